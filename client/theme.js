// The theme chosen in Settings (client/theme.py keeps it under this key), set on <html> before the
// first paint, so that the page never shows the other theme first. A classic script in <head>: it
// runs before the body is drawn. Nothing stored (or storage off): the system setting decides.
try {
  const theme = localStorage.getItem("snake_llama.theme");
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
} catch {
  // storage switched off: the system's theme
}
