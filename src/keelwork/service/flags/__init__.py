"""Feature flags in a running service: the live flag source and the OpenFeature provider."""
