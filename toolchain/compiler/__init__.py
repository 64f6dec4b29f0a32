"""The graph compiler: networkx passes that take any IR network to core images."""
