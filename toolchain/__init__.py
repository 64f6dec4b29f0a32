"""spikeforge.toolchain."""
