"""Guest ABI definitions (gVisor: pkg/abi). Only ``mqsentry.abi.linux`` exists: the sentry serves Linux guests."""
