"""View components: each binds one part of the page to the chat state."""
