"""Result files: JSON summaries and fields for ParaView."""
