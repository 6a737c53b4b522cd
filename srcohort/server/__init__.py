"""A local single-node OpenSearch for the demo, the benchmarks and the tests.

Kaapana brings its own OpenSearch; this one exists so srcohort can be tried and tested on a
laptop or in CI without a cluster.
"""

from srcohort.server.distribution import (DEFAULT_VERSION, FetchError, default_cache_dir,
                                          ensure_distribution, fetch_with_maven)
from srcohort.server.process import LocalOpenSearch, default_data_dir, default_server

__all__ = ["DEFAULT_VERSION", "FetchError", "LocalOpenSearch", "default_cache_dir",
           "default_data_dir", "default_server", "ensure_distribution", "fetch_with_maven"]
