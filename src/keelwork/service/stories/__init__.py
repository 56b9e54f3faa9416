"""Case studies run end to end on real data through keelwork's public API (``keel demo
--story``): :mod:`~keelwork.service.stories.sentiment` is the closed loop of a sentiment model
whose traffic shifts to other topics, on the tweets of :mod:`~keelwork.service.stories.tweets`.
"""
