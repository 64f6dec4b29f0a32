"""spikeforge.firmware."""
