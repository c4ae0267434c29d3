"""
The vendors' own tool formats in and out: one module per vendor (pure
translation plus a thin route), on the shared L{base}.
"""
