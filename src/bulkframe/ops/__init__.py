"""Operations: each drives the one pipeline for one kind of write."""
