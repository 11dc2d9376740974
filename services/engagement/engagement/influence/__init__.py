"""Influence: reach, engagement received, amplification and PageRank; advocates, detractors."""
