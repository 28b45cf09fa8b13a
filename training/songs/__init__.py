"""Songs written by code: a form, chords, grooves and parts for six stems, as note lists (no audio here).

`compose.compose(seed)` returns a `model.Song`: tempo, metre, key, sections, one `Track` per instrument
part (General MIDI program, stem, notes in seconds) and the sung vocal line. `stats` measures what
distinguishes such songs from real ones.
"""
