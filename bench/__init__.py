"""`make bench`: our stack side by side with raw llama-cpp-python and `python -m llama_cpp.server`."""
