"""IDL — In-Dialogue Learning (Cheng et al., EMNLP 2024; code: the authors' release with its LLaMA-Factory fork).

A person is answered from their *other* dialogues, never from a profile. :mod:`.extractor` holds the persona
extractor's data (PersonaExt stacked samples) and parse, :mod:`.spi` Static Persona Identification (groups of a
person's dialogues, targets and references), :mod:`.conved` Dynamic Persona Identification (conversation edit
distance and the order of the references), :mod:`.criteria` the criterion samples of DPOC, :mod:`.sequences` the MSL and generation sequences, :mod:`.planning` the per-person plan (SPI then DPI), :mod:`.dpoc_pairs` the DPOC training triples;
:mod:`.method` the registered ``idl`` method (stages ``extractor``, ``msl``, ``dpoc``; generation).
"""
