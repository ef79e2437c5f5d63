// The bare-Pyodide floor (bench/page.py): import our own Pyodide and await loadPyodide().
import { loadPyodide } from "/static/pyodide/pyodide.mjs";

await loadPyodide();
performance.mark("bare:ready");
document.body.dataset.ready = "true";
