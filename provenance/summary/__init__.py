"""The EU AI Act public summary of training content (Art. 53(1)(d)) in the Commission's
template structure, and the crawler information page: pure computation and rendering."""
