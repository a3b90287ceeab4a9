"""FLOPs of one VGG16-notop forward pass at HxW (multiply-adds counted as 2). usage: vgg_flops.py H W"""
import sys

h, w = int(sys.argv[1]), int(sys.argv[2])
flops, cin = 0, 3
for convs, cout in [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]:
    for _ in range(convs):
        flops += 2 * 9 * cin * cout * h * w
        cin = cout
    h, w = h // 2, w // 2
print(flops)
