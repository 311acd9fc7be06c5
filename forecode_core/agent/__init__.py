"""The agent loop's pure core (issue 17): the model's turn format (``turn``), path
confinement (``paths``), the command allow-list (``allow``), the loop as a state machine
(``loop``) and its blocking driver over seams (``drive``)."""
