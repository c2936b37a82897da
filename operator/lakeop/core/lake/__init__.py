"""The lake's layout rules: run input claims, shares of a scaled-out run, partition layout."""
