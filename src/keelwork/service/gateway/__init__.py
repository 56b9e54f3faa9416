"""The serving gateway: model hosts, routing, guards and the prediction log."""
