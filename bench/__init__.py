"""`make bench`: the precise side-by-side benchmark (not Locust). See bench/__main__.py."""
