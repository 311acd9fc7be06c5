"""Chat: message types, the versioned chat prompt formats, the repetition guard, chat context under
a budget, conversations."""
