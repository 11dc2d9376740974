"""Trends: volumes per tracker and per topic (hashtag) per hour and day, and their spikes."""
