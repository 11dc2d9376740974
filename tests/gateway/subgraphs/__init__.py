"""Small Federation v2 subgraphs (strawberry) that the gateway tests compose and serve."""
