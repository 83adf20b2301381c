"""The plans on sale, as every request reads them (cached per process); `plans` is where operators
change them."""
