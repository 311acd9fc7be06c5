"""The client side of the Forecode cloud service: channels, tokens, the router."""
