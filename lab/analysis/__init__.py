"""Analysis: statistics and evidence measures over results; imports no torch and no trainer."""
