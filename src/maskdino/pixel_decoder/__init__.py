from maskdino.pixel_decoder.pixel_decoder import MultiScaleFeatures, PixelDecoder

__all__ = ["MultiScaleFeatures", "PixelDecoder"]
