"""The chaos suite: real processes, real faults, every acknowledged record accounted for."""
