"""Everything that talks to the kernel: the cffi executor and the tables its plan is written in."""
