"""The lake's layout.

Input claims, sharding, partitioning.
"""
