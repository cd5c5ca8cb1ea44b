#!/usr/bin/env python3
"""PyTorch twin of airbench94: Keller Jordan's cifar10-airbench,
legacy/airbench94.py, ported with only the data reading changed.

    python3 scripts/torch_airbench94.py --data DIR [--device cuda|cpu] [--epochs 9.9] [--batch 1024]
        [--seed 0] [--threads N] [--warmup-run] [--preset model/presets/airbench94.json]

Data: DIR is a cifar-10-batches-bin folder: data_batch_*.bin (any whole
number of 3,073-byte records: a label byte, then 3x32x32 channel-major
pixels) for training, test_batch.bin for evaluation, so the twin runs on the
trainer's 40,000/10,000 dev split without downloading. Everything else is
upstream's, line for line where possible:

- the network of make_net() (whitening conv 2x2 -> GELU -> three
  ConvGroups of conv3x3/maxpool2/BatchNorm/GELU/conv3x3/BatchNorm/GELU,
  widths 64/256/256 -> maxpool3 -> linear 256x10 -> times 1/9), dirac
  conv init, BatchNorm eps 1e-12, momentum 0.4 (upstream's 0.6 is one
  minus PyTorch's), BatchNorm scales frozen at 1. It is defined here, as
  upstream, rather than built by torch_model.py: the preset normalises
  inside the network and pads "same" convs by F.pad, where airbench
  normalises in its loader and lets cuDNN pad, and the twin is also a speed
  reference. At start-up its state_dict keys, shapes and trainable tensors
  are checked against model/presets/airbench94.json built by torch_model.py
  (test_torch_airbench94.py shows both compute the same function and draw
  the same initial weights);
- the whitening conv set from the first 5,000 training images: the
  eigenvectors of the uncentred covariance of their 2x2 patches, scaled by
  1/sqrt(eigenvalue + 5e-4), and their negation. The covariance and its
  eigendecomposition are in float64 (upstream: float32, whose rounding on
  the CPU can take the smallest eigenvalue below -5e-4, giving NaN
  weights; on the 2,500-image sample it gives -1.6e-4 where float64 gives
  +3.1e-4). Non-finite weights are an error;
- the loader: normalise, flip every image at random once, reflect-pad by 2;
  each epoch a random translation by up to 2 pixels per image
  (batch_crop), and the whole set mirrored in odd epochs; shuffled, the last
  partial batch dropped;
- CrossEntropyLoss(label_smoothing=0.2) summed over the batch;
  SGD(momentum 0.85, nesterov) with lr 11.5/(1024*(1+1/0.15)), weight decay
  0.0153*batch/(1024*(1+1/0.15)) over lr, the BatchNorm biases at 64 times
  the lr with the same decay per step (lr times weight_decay); LambdaLR from 0.2 to 1 over the first 23% of
  the steps, then to 0.07; ceil(steps_per_epoch*epochs) steps in all;
- lookahead every 5 steps with decay 0.95^5*(step/steps)^3 (over every
  floating tensor of the state_dict, running statistics included), and the
  weights set to the average at the last step;
- the whitening bias trained for the first 3 epochs only;
- evaluation without augmentation after each epoch (in chunks of 2,000
  images, 500 on the CPU to bound memory; the logits are per image), and
  test-time augmentation level 2 at the end (mirror, and the mirrored pair
  shifted by one pixel up-left and down-right, reflect padded, weights
  1/4, 1/4, 1/8 x4).

--batch changes what upstream's hyp['opt']['batch_size'] changes: the
steps per epoch and the weight decay term; the learning rate per example
stays, so the mean-loss learning rate is 1.5*batch/1024 (the README's
trainer recipe has 1.5 at batch 1024).

--device cuda trains in half precision with channels_last (BatchNorm in
float32) and cudnn.benchmark, as upstream; --device cpu in float32 (for
checking on a machine without a GPU). --warmup-run first trains once on
random labels, untimed, as upstream's main('warmup') (GPU only: it warms
cuDNN's autotuner and the caching allocator). torch.manual_seed(--seed)
before each run.

Output, on stdout: one JSON line per epoch {"epoch" (from 1), "train_loss"
(the last batch's summed loss / batch, as upstream), "train_acc" (the last
batch's), "val_acc", "seconds"}, then {"val_acc", "tta_val_acc",
"train_seconds", "total_seconds"}. Seconds are measured as upstream: the
whitening init and the training loops (CUDA events and synchronize on the
GPU, a wall clock on the CPU), not the data reading nor the per-epoch
evaluation; total_seconds adds the final TTA evaluation (upstream's
total_time_seconds). stderr gets a line with the run's wall time, every
evaluation included. Errors are one line on stderr, exit 1.
"""
import argparse
import json
import math
import os
import sys
import time
from math import ceil

import torch
import torch.nn.functional as F
from torch import nn

import torch_model
from torch_resnet20 import Fail, load_data

HERE = os.path.dirname(os.path.abspath(__file__))

#############################################
#            Setup/Hyperparameters          #
#############################################

hyp = {
    'opt': {
        'train_epochs': 9.9,
        'batch_size': 1024,
        'lr': 11.5,                 # learning rate per 1024 examples
        'momentum': 0.85,
        'weight_decay': 0.0153,     # weight decay per 1024 examples (decoupled from learning rate)
        'bias_scaler': 64.0,        # scales up learning rate (but not weight decay) for BatchNorm biases
        'label_smoothing': 0.2,
        'whiten_bias_epochs': 3,    # how many epochs to train the whitening layer bias before freezing
    },
    'aug': {
        'flip': True,
        'translate': 2,
    },
    'net': {
        'widths': {
            'block1': 64,
            'block2': 256,
            'block3': 256,
        },
        'batchnorm_momentum': 0.6,
        'scaling_factor': 1/9,
        'tta_level': 2,         # the level of test-time augmentation: 0=none, 1=mirror, 2=mirror+translate
    },
}

#############################################
#                DataLoader                 #
#############################################

CIFAR_MEAN = torch.tensor((0.4914, 0.4822, 0.4465))
CIFAR_STD = torch.tensor((0.2470, 0.2435, 0.2616))


def normalize(images):
    """torchvision's T.Normalize(CIFAR_MEAN, CIFAR_STD) on [N, 3, H, W]."""
    mean = CIFAR_MEAN.to(images.device, images.dtype).view(-1, 1, 1)
    std = CIFAR_STD.to(images.device, images.dtype).view(-1, 1, 1)
    return images.clone().sub_(mean).div_(std)


def batch_flip_lr(inputs):
    flip_mask = (torch.rand(len(inputs), device=inputs.device) < 0.5).view(-1, 1, 1, 1)
    return torch.where(flip_mask, inputs.flip(-1), inputs)


def batch_crop(images, crop_size):
    r = (images.size(-1) - crop_size)//2
    shifts = torch.randint(-r, r+1, size=(len(images), 2), device=images.device)
    images_out = torch.empty((len(images), 3, crop_size, crop_size), device=images.device, dtype=images.dtype)
    # The two cropping methods in this if-else produce equivalent results, but the second is faster for r > 2.
    if r <= 2:
        for sy in range(-r, r+1):
            for sx in range(-r, r+1):
                mask = (shifts[:, 0] == sy) & (shifts[:, 1] == sx)
                images_out[mask] = images[mask, :, r+sy:r+sy+crop_size, r+sx:r+sx+crop_size]
    else:
        images_tmp = torch.empty((len(images), 3, crop_size, crop_size+2*r), device=images.device, dtype=images.dtype)
        for s in range(-r, r+1):
            mask = (shifts[:, 0] == s)
            images_tmp[mask] = images[mask, :, r+s:r+s+crop_size, :]
        for s in range(-r, r+1):
            mask = (shifts[:, 1] == s)
            images_out[mask] = images_tmp[mask, :, :, r+s:r+s+crop_size]
    return images_out


def device_images(u8, device):
    """uint8 [N, 3, 32, 32] as upstream's loader holds them: pixels/255 in
    half precision and channels_last on the GPU, float32 on the CPU."""
    u8 = u8.to(device)
    if device.type == 'cuda':
        return (u8.half() / 255).to(memory_format=torch.channels_last)
    return u8.float() / 255


class CifarLoader:
    """Upstream's CifarLoader over images and labels already on the device."""

    def __init__(self, images, labels, train=True, batch_size=500, aug=None, drop_last=None, shuffle=None):
        self.images, self.labels = images, labels
        self.normalize = normalize
        self.proc_images = {}  # Saved results of image processing to be done on the first epoch
        self.epoch = 0

        self.aug = aug or {}
        for k in self.aug.keys():
            assert k in ['flip', 'translate'], 'Unrecognized key: %s' % k

        self.batch_size = batch_size
        self.drop_last = train if drop_last is None else drop_last
        self.shuffle = train if shuffle is None else shuffle

    def __len__(self):
        return len(self.images)//self.batch_size if self.drop_last else ceil(len(self.images)/self.batch_size)

    def __iter__(self):

        if self.epoch == 0:
            images = self.proc_images['norm'] = self.normalize(self.images)
            # Pre-flip images in order to do every-other epoch flipping scheme
            if self.aug.get('flip', False):
                images = self.proc_images['flip'] = batch_flip_lr(images)
            # Pre-pad images to save time when doing random translation
            pad = self.aug.get('translate', 0)
            if pad > 0:
                self.proc_images['pad'] = F.pad(images, (pad,)*4, 'reflect')

        if self.aug.get('translate', 0) > 0:
            images = batch_crop(self.proc_images['pad'], self.images.shape[-2])
        elif self.aug.get('flip', False):
            images = self.proc_images['flip']
        else:
            images = self.proc_images['norm']
        # Flip all images together every other epoch. This increases diversity relative to random flipping
        if self.aug.get('flip', False):
            if self.epoch % 2 == 1:
                images = images.flip(-1)

        self.epoch += 1

        indices = (torch.randperm if self.shuffle else torch.arange)(len(images), device=images.device)
        for i in range(len(self)):
            idxs = indices[i*self.batch_size:(i+1)*self.batch_size]
            yield (images[idxs], self.labels[idxs])

#############################################
#            Network Components             #
#############################################


class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class Mul(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


class BatchNorm(nn.BatchNorm2d):
    def __init__(self, num_features, momentum, eps=1e-12,
                 weight=False, bias=True):
        super().__init__(num_features, eps=eps, momentum=1-momentum)
        self.weight.requires_grad = weight
        self.bias.requires_grad = bias
        # Note that PyTorch already initializes the weights to one and bias to zero


class Conv(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size=3, padding='same', bias=False):
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, padding=padding, bias=bias)

    def reset_parameters(self):
        super().reset_parameters()
        if self.bias is not None:
            self.bias.data.zero_()
        w = self.weight.data
        torch.nn.init.dirac_(w[:w.size(1)])


class ConvGroup(nn.Module):
    def __init__(self, channels_in, channels_out, batchnorm_momentum):
        super().__init__()
        self.conv1 = Conv(channels_in,  channels_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(channels_out, batchnorm_momentum)
        self.conv2 = Conv(channels_out, channels_out)
        self.norm2 = BatchNorm(channels_out, batchnorm_momentum)
        self.activ = nn.GELU()

    def forward(self, x):
        x = self.conv1(x)
        x = self.pool(x)
        x = self.norm1(x)
        x = self.activ(x)
        x = self.conv2(x)
        x = self.norm2(x)
        x = self.activ(x)
        return x

#############################################
#            Network Definition             #
#############################################


def make_net(device):
    """Upstream's make_net: half precision and channels_last (BatchNorm in
    float32) on the GPU; all float32 on the CPU."""
    widths = hyp['net']['widths']
    batchnorm_momentum = hyp['net']['batchnorm_momentum']
    whiten_kernel_size = 2
    whiten_width = 2 * 3 * whiten_kernel_size**2
    net = nn.Sequential(
        Conv(3, whiten_width, whiten_kernel_size, padding=0, bias=True),
        nn.GELU(),
        ConvGroup(whiten_width,     widths['block1'], batchnorm_momentum),
        ConvGroup(widths['block1'], widths['block2'], batchnorm_momentum),
        ConvGroup(widths['block2'], widths['block3'], batchnorm_momentum),
        nn.MaxPool2d(3),
        Flatten(),
        nn.Linear(widths['block3'], 10, bias=False),
        Mul(hyp['net']['scaling_factor']),
    )
    net[0].weight.requires_grad = False
    if device.type == 'cuda':
        net = net.half().to(device)
        net = net.to(memory_format=torch.channels_last)
        for mod in net.modules():
            if isinstance(mod, BatchNorm):
                mod.float()
    else:
        net = net.to(device)
    return net


def check_against_preset(net, preset_path):
    """The network's state_dict keys, shapes and trainable tensors are the
    preset's, as torch_model.py builds it (so checkpoints line up)."""
    try:
        spec = torch_model.load_spec(preset_path)
        ref = torch_model.build(spec, (3, 32, 32))
    except (OSError, torch_model.ModelError) as e:
        raise Fail(f"--preset {preset_path}: {e}")
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    if ours != theirs:
        diff = sorted(set(ours.items()) ^ set(theirs.items()))
        raise Fail(f"--preset {preset_path}: the state_dict differs from airbench94's network: {diff[:6]}")
    ours = sorted(k for k, p in net.named_parameters() if p.requires_grad)
    theirs = sorted(k for k, p in ref.named_parameters() if p.requires_grad)
    if ours != theirs:
        raise Fail(f"--preset {preset_path}: trainable tensors {theirs}, airbench94 trains {ours}")

#############################################
#       Whitening Conv Initialization       #
#############################################


def get_patches(x, patch_shape):
    c, (h, w) = x.shape[1], patch_shape
    return x.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w).double()


def get_whitening_parameters(patches):
    n, c, h, w = patches.shape
    patches_flat = patches.view(n, -1)
    est_patch_covariance = (patches_flat.T @ patches_flat) / n
    eigenvalues, eigenvectors = torch.linalg.eigh(est_patch_covariance, UPLO='U')
    return eigenvalues.flip(0).view(-1, 1, 1, 1), eigenvectors.T.reshape(c*h*w, c, h, w).flip(0)


def init_whitening_conv(layer, train_set, eps=5e-4):
    patches = get_patches(train_set, patch_shape=layer.weight.data.shape[2:])
    eigenvalues, eigenvectors = get_whitening_parameters(patches)
    eigenvectors_scaled = eigenvectors / torch.sqrt(eigenvalues + eps)
    layer.weight.data[:] = torch.cat((eigenvectors_scaled, -eigenvectors_scaled))
    if not torch.isfinite(layer.weight.data).all():
        raise Fail(f"whitening init: non-finite weights (smallest eigenvalue {eigenvalues.min().item():.3g}, "
                   f"eps {eps})")

############################################
#                Lookahead                 #
############################################


class LookaheadState:
    def __init__(self, net):
        self.net_ema = {k: v.clone() for k, v in net.state_dict().items()}

    def update(self, net, decay):
        for ema_param, net_param in zip(self.net_ema.values(), net.state_dict().values()):
            if net_param.dtype in (torch.half, torch.float):
                ema_param.lerp_(net_param, 1-decay)
                net_param.copy_(ema_param)

############################################
#               Evaluation                 #
############################################


def infer(model, loader, tta_level=0, split=2000):

    # Test-time augmentation strategy (for tta_level=2):
    # 1. Flip/mirror the image left-to-right (50% of the time).
    # 2. Translate the image by one pixel either up-and-left or down-and-right (50% of the time,
    #    i.e. both happen 25% of the time).
    #
    # This creates 6 views per image (left/right times the two translations and no-translation),
    # which we evaluate and then weight according to the given probabilities.

    def infer_basic(inputs, net):
        return net(inputs).clone()

    def infer_mirror(inputs, net):
        return 0.5 * net(inputs) + 0.5 * net(inputs.flip(-1))

    def infer_mirror_translate(inputs, net):
        logits = infer_mirror(inputs, net)
        pad = 1
        padded_inputs = F.pad(inputs, (pad,)*4, 'reflect')
        inputs_translate_list = [
            padded_inputs[:, :, 0:32, 0:32],
            padded_inputs[:, :, 2:34, 2:34],
        ]
        logits_translate_list = [infer_mirror(inputs_translate, net)
                                 for inputs_translate in inputs_translate_list]
        logits_translate = torch.stack(logits_translate_list).mean(0)
        return 0.5 * logits + 0.5 * logits_translate

    model.eval()
    test_images = loader.normalize(loader.images)
    infer_fn = [infer_basic, infer_mirror, infer_mirror_translate][tta_level]
    with torch.no_grad():
        return torch.cat([infer_fn(inputs, model) for inputs in test_images.split(split)])


def evaluate(model, loader, tta_level=0, split=2000):
    logits = infer(model, loader, tta_level, split)
    return (logits.argmax(1) == loader.labels).float().mean().item()

############################################
#                Training                  #
############################################


class Timer:
    """Upstream's timing: CUDA events and synchronize on the GPU; a wall
    clock on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == 'cuda'
        if self.cuda:
            self.starter = torch.cuda.Event(enable_timing=True)
            self.ender = torch.cuda.Event(enable_timing=True)

    def start(self):
        if self.cuda:
            self.starter.record()
        else:
            self.t0 = time.perf_counter()

    def stop(self):
        """Seconds since start."""
        if self.cuda:
            self.ender.record()
            torch.cuda.synchronize()
            return 1e-3 * self.starter.elapsed_time(self.ender)
        return time.perf_counter() - self.t0


def lr_lambda(total_train_steps):
    """Upstream's get_lr: the LambdaLR factor at a step."""
    def get_lr(step):
        warmup_steps = int(total_train_steps * 0.23)
        warmdown_steps = total_train_steps - warmup_steps
        if step < warmup_steps:
            frac = step / warmup_steps
            return 0.2 * (1 - frac) + 1.0 * frac
        else:
            frac = (step - warmup_steps) / warmdown_steps
            return 1.0 * (1 - frac) + 0.07 * frac
    return get_lr


def alpha_schedule_of(total_train_steps):
    return 0.95**5 * (torch.arange(total_train_steps+1) / total_train_steps)**3


def make_optimizer(model, batch_size):
    """Upstream's SGD with its two parameter groups."""
    momentum = hyp['opt']['momentum']
    # Assuming gradients are constant in time, for Nesterov momentum, the below ratio is how much
    # larger the default steps will be than the underlying per-example gradients. We divide the
    # learning rate by this ratio in order to ensure steps are the same scale as gradients, regardless
    # of the choice of momentum.
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = hyp['opt']['lr'] / kilostep_scale  # un-decoupled learning rate for PyTorch SGD
    wd = hyp['opt']['weight_decay'] * batch_size / kilostep_scale
    lr_biases = lr * hyp['opt']['bias_scaler']

    norm_biases = [p for k, p in model.named_parameters() if 'norm' in k and p.requires_grad]
    other_params = [p for k, p in model.named_parameters() if 'norm' not in k and p.requires_grad]
    param_configs = [dict(params=norm_biases, lr=lr_biases, weight_decay=wd/lr_biases),
                     dict(params=other_params, lr=lr, weight_decay=wd/lr)]
    return torch.optim.SGD(param_configs, momentum=momentum, nesterov=True)


def train_run(a, device, train_data, test_data, warmup=False, log=print):
    """One run of upstream's main(); returns its final figures."""
    batch_size = a.batch
    epochs = a.epochs

    loss_fn = nn.CrossEntropyLoss(label_smoothing=hyp['opt']['label_smoothing'], reduction='none')
    test_loader = CifarLoader(*test_data, train=False, batch_size=2000)
    train_loader = CifarLoader(*train_data, train=True, batch_size=batch_size, aug=hyp['aug'])
    if warmup:
        # The only purpose of the first run is to warmup, so we can use dummy data
        train_loader.labels = torch.randint(0, 10, size=(len(train_loader.labels),), device=train_loader.labels.device)
    total_train_steps = ceil(len(train_loader) * epochs)
    eval_split = 2000 if device.type == 'cuda' else 500  # per-image results: the split bounds CPU memory only

    model = make_net(device)
    current_steps = 0

    optimizer = make_optimizer(model, batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total_train_steps))

    alpha_schedule = alpha_schedule_of(total_train_steps)
    lookahead_state = LookaheadState(model)

    timer = Timer(device)
    train_seconds = 0.0

    # Initialize the whitening layer using training images
    timer.start()
    train_images = train_loader.normalize(train_loader.images[:5000])
    init_whitening_conv(model[0], train_images)
    train_seconds += timer.stop()

    val_acc = None
    for epoch in range(ceil(epochs)):

        model[0].bias.requires_grad = (epoch < hyp['opt']['whiten_bias_epochs'])

        ####################
        #     Training     #
        ####################

        timer.start()

        model.train()
        for inputs, labels in train_loader:

            outputs = model(inputs)
            loss = loss_fn(outputs, labels).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()

            current_steps += 1

            if current_steps % 5 == 0:
                lookahead_state.update(model, decay=alpha_schedule[current_steps].item())

            if current_steps >= total_train_steps:
                if lookahead_state is not None:
                    lookahead_state.update(model, decay=1.0)
                break

        seconds = timer.stop()
        train_seconds += seconds

        ####################
        #    Evaluation    #
        ####################

        # Save the accuracy and loss from the last training batch of the epoch
        train_acc = (outputs.detach().argmax(1) == labels).float().mean().item()
        train_loss = loss.item() / batch_size
        val_acc = evaluate(model, test_loader, tta_level=0, split=eval_split)
        if not warmup:
            log(json.dumps({"epoch": epoch + 1, "train_loss": round(train_loss, 6), "train_acc": round(train_acc, 6),
                            "val_acc": round(val_acc, 6), "seconds": round(seconds, 4)}))

    ####################
    #  TTA Evaluation  #
    ####################

    timer.start()
    tta_val_acc = evaluate(model, test_loader, tta_level=hyp['net']['tta_level'], split=eval_split)
    total_seconds = train_seconds + timer.stop()

    result = {"val_acc": round(val_acc, 6), "tta_val_acc": round(tta_val_acc, 6),
              "train_seconds": round(train_seconds, 4), "total_seconds": round(total_seconds, 4)}
    return result, model


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="cifar-10-batches-bin folder (data_batch_*.bin, test_batch.bin)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cuda: half precision, channels_last (upstream); cpu: float32")
    p.add_argument("--epochs", type=float, default=hyp['opt']['train_epochs'], help="training epochs, may be fractional (9.9)")
    p.add_argument("--batch", type=int, default=hyp['opt']['batch_size'])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (torch.set_num_threads)")
    p.add_argument("--warmup-run", action="store_true",
                   help="an untimed first run on random labels, as upstream's 'warmup' (GPU only)")
    p.add_argument("--preset", default=os.path.join(HERE, "..", "model", "presets", "airbench94.json"),
                   help="the model file whose state_dict the network must match (default: the trainer's airbench94 preset)")
    a = p.parse_args()
    if not (math.isfinite(a.epochs) and a.epochs > 0):
        raise Fail(f"--epochs {a.epochs}: want a finite number above 0")
    for flag, v in (("--batch", a.batch), ("--threads", a.threads)):
        if v < 1:
            raise Fail(f"{flag} {v}: want at least 1")
    if a.warmup_run and a.device != "cuda":
        raise Fail("--warmup-run is for --device cuda (it warms cuDNN's autotuner); leave it out on the CPU")
    if a.device == "cuda" and not torch.cuda.is_available():
        raise Fail("--device cuda: PyTorch sees no CUDA device (torch.cuda.is_available() is False); "
                   "use --device cpu, or a PyTorch built with CUDA")
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    device = torch.device(a.device)
    with torch.random.fork_rng(devices=[]):  # leaves the seeded runs' draws alone
        check_against_preset(make_net(torch.device("cpu")), a.preset)

    (xtr, ytr), (xte, yte) = load_data(a.data)
    if max(ytr.max().item(), yte.max().item()) >= 10:
        raise Fail(f"{a.data}: labels beyond 9")
    if len(xtr) < a.batch:
        raise Fail(f"--batch {a.batch}: the training set has only {len(xtr)} images (the last partial batch is dropped)")
    train_data = (device_images(xtr, device), ytr.to(device))
    test_data = (device_images(xte, device), yte.to(device))
    print(f"torch_airbench94: {len(xtr)} training and {len(xte)} evaluation images, {a.device}, "
          f"{a.epochs:g} epochs of batch {a.batch}, torch {torch.__version__}", file=sys.stderr)

    if a.warmup_run:
        torch.manual_seed(a.seed)
        t0 = time.perf_counter()
        train_run(a, device, train_data, test_data, warmup=True)
        print(f"torch_airbench94: warm-up run (random labels) took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    result, model = train_run(a, device, train_data, test_data, log=lambda s: print(s, flush=True))
    wall = time.perf_counter() - t0  # evaluate's .item() has synchronised
    print(json.dumps(result), flush=True)
    print(f"torch_airbench94: the timed run took {wall:.2f} s of wall time (whitening, training, every evaluation)",
          file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"torch_airbench94: error: {e}", file=sys.stderr)
        sys.exit(1)
