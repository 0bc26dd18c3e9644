"""The RTGs the post evaluates at, as constants that load nothing (the CLI shows them in --help)."""

#: The post's Fig. 5 range, every 0.1.
DEFAULT_RTGS: tuple[float, ...] = tuple(round(-1 + 0.1 * i, 2) for i in range(21))
#: The post's Table 1 conditions.
TABLE1_RTGS: tuple[float, ...] = (-1.0, 0.0, 0.9)
