"""MIMDet (hustvl/MIMDet): ConvNet-ViT hybrid backbone with token sampling under Mask R-CNN FPN.

Configured by `ModelConfig` (architecture "mimdet_mask_rcnn"; `backbone.mimdet` or
`backbone.benchmarking_vit`; `mask_rcnn`), built by `maskdino.build_model`, presets in
`presets` (registered in `maskdino.presets`). Modules: `detector` (MIMDetMaskRCNN), `heads`, `transform`, `benchmarking_vit`,
detectron2's inference (`anchors`, `boxes`, `rpn`, `roi_heads`, `mask_paste`), `checkpoints` (official
detectors), `optim` (the official parameter groups); the backbone is `maskdino.backbones.mimdet`,
initialised from MAE by `maskdino.load_backbone_weights`. Nothing is imported here, so Mask DINO's
backbones load without torchvision.
"""
