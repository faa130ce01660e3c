"""Guest ABI definitions (gVisor: pkg/abi). Only ``abi.linux`` exists: the sentry serves Linux guests."""
