"""The `hashmem` command line: parse, call memory/decoders, format. No logic of its own."""
