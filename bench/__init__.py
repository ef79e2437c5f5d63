"""`make bench`: our server side by side with its engine alone and llama.cpp's own server."""
