"""Gateway tests: supergraph reader, planner, shaping, and the gateway over real HTTP."""
