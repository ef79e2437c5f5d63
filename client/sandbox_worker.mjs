// The sandbox's worker (client/sandbox.py starts it): a Pyodide of its own, away from the page's
// interpreter, its state and the DOM. Its Content-Security-Policy is that of this file's response
// (server/security.py), so the code it runs reaches our host and no other.
// The page names its Pyodide folder (`?pyodide=`); what runs the code is Python: sandbox_runner.py.
const indexURL = new URL(import.meta.url).searchParams.get("pyodide");

const ready = (async () => {
  const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
  const pyodide = await loadPyodide({ indexURL });
  const runner = await fetch(new URL("sandbox_runner.py", import.meta.url));
  if (!runner.ok) throw new Error(`${runner.url} answered ${runner.status}`);
  pyodide.runPython(await runner.text());
  return pyodide.globals.get("handle");
})();

// Set at once: a request posted while Pyodide starts waits for it instead of being lost.
onmessage = (event) =>
  ready.then(
    (handle) => handle(event.data),
    (error) => postMessage(JSON.stringify({ kind: "failed", error: `Python did not start: ${error}` })),
  );
