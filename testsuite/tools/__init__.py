"""Tests of the command-line tools (``tools``): the demo, the bench's quick mode and the strace
formatter. They run in-process on the embedded kernel only (the tools are not Linux behaviour)."""
