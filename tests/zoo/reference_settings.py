"""Training constants of the reference implementations, read from their own files.

Plain data, written from the reference code and configs (repository + path,
or paper section), never from kerasface's recipes. Each constant is a dict
`{"value": ..., "source": "..."}`; a constant that could not be checked in a
stored copy of its source has `"verified": False` and is not used by the
tests. `docs/reference_settings.md` is the same table for reading, with the
version notes and the centre-loss algebra.

Conventions:
    - Batch sizes are global (per-device batch x number of devices).
    - Weight decay is the coupled L2 form `grad += wd * w` (Caffe
      `weight_decay`, torch `SGD(weight_decay=...)`, TF-slim
      `l2_regularizer(wd)` = `wd * sum(w^2) / 2` added to the loss).
    - Learning-rate boundaries are in the unit named next to them.
"""


def _c(value, source, verified=True):
    entry = {"value": value, "source": source}
    if not verified:
        entry["verified"] = False
    return entry


def value(table, key):
    """The value of `table[key]`."""
    return table[key]["value"]


def source(table, key):
    """The citation of `table[key]`."""
    return table[key]["source"]


# --------------------------------------------------------------------------
# SphereFace (wy1iu/sphereface). The released SphereFace-20 model (LFW 99.30%)
# is "#3" of five runs that followed the README (commit 7f9acb1 and later).
# --------------------------------------------------------------------------
_SF_SOLVER = "wy1iu/sphereface train/code/sphereface_solver.prototxt (commit 7f9acb1)"
_SF_MODEL = "wy1iu/sphereface train/code/sphereface_model.prototxt (commit 7f9acb1, 'SpherefaceNet-20')"
_SF_LAYER = "wy1iu/sphereface tools/caffe-sphereface/src/caffe/layers/margin_inner_product_layer.cpp / .cu"
SPHEREFACE = {
    "optimizer": _c("sgd", _SF_SOLVER + ": Caffe SGD (no `type:` line = SGD)"),
    "base_lr": _c(0.1, _SF_SOLVER + ": base_lr: 0.1"),
    "lr_policy": _c("multistep", _SF_SOLVER + ': lr_policy: "multistep", gamma: 0.1'),
    "lr_gamma": _c(0.1, _SF_SOLVER + ": gamma: 0.1"),
    "lr_values": _c([0.1, 0.01, 0.001], _SF_SOLVER + ": base_lr 0.1, gamma 0.1 at each stepvalue"),
    "lr_boundaries_steps": _c(
        [16000, 24000],
        _SF_SOLVER + ": stepvalue 16000, 24000, 28000; max_iter 28000 (the 28000 step is never used)",
    ),
    "max_iter": _c(28000, _SF_SOLVER + ": max_iter: 28000"),
    "momentum": _c(0.9, _SF_SOLVER + ": momentum: 0.9"),
    "l2_decay": _c(0.0005, _SF_SOLVER + ": weight_decay: 0.0005 (Caffe: coupled, grad += wd * decay_mult * w)"),
    "batch_per_gpu": _c(256, _SF_MODEL + ": image_data_param batch_size: 256"),
    "num_gpus": _c(
        2,
        "wy1iu/sphereface README.md Part 2 'Train': ./code/sphereface_train.sh 0,1 (two GPUs; the script's "
        "own comment shows 0,1,2,3). Caffe runs batch_size on each GPU: BVLC/caffe docs/multigpu.md",
    ),
    "global_batch": _c(512, "256 per GPU x 2 GPUs (rows batch_per_gpu, num_gpus)"),
    "input_shape": _c((112, 96, 3), _SF_MODEL + ": source data/CASIA-WebFace-112X96.txt"),
    "preprocess_scale": _c(0.0078125, _SF_MODEL + ": transform_param scale: 0.0078125 (= 1/128)"),
    "preprocess_offset": _c(-127.5 * 0.0078125, _SF_MODEL + ": mean_value: 127.5 (x3), then scale: (x - 127.5) / 128"),
    "mirror": _c(True, _SF_MODEL + ": transform_param mirror: true"),
    "embedding_dim": _c(512, _SF_MODEL + ": fc5 num_output: 512"),
    "num_classes": _c(10572, _SF_MODEL + ": fc6 MarginInnerProduct num_output: 10572"),
    "margin": _c(4, _SF_MODEL + ": margin_inner_product_param type: QUADRUPLE (m = 4)"),
    "lambda_base": _c(1000.0, _SF_MODEL + ": base: 1000"),
    "lambda_gamma": _c(0.12, _SF_MODEL + ": gamma: 0.12"),
    "lambda_power": _c(1.0, _SF_MODEL + ": power: 1"),
    "lambda_min": _c(5.0, _SF_MODEL + ": lambda_min: 5"),
    "lambda_iteration_start": _c(0, _SF_MODEL + ": iteration: 0"),
    "lambda_increment_first": _c(
        True,
        _SF_LAYER + ": Forward_cpu/Forward_gpu begin with `iter_ += (Dtype)1.;` and then "
        "`lambda_ = base_ * pow(1 + gamma_ * iter_, -power_)`: the first training step uses iteration 1 "
        "(lambda = 1000 / 1.12 = 892.857...)",
    ),
    "first_step_lambda": _c(1000.0 / 1.12, "from lambda_increment_first: base * (1 + gamma * 1) ** -power"),
    "weight_filler_stride2_and_fc": _c(
        "xavier", _SF_MODEL + ": conv*_1 (stride 2), fc5 and fc6: weight_filler type xavier"
    ),
    "weight_filler_residual": _c(
        "gaussian std 0.01", _SF_MODEL + ": conv*_2.. (residual-unit convs): weight_filler gaussian std 0.01"
    ),
    "bias_stride2_and_fc5": _c(
        "lr_mult 2, decay_mult 0, init 0", _SF_MODEL + ": second param block of conv*_1 and fc5"
    ),
    "bias_residual": _c(
        "lr_mult 0, decay_mult 0, init 0 (frozen at zero)", _SF_MODEL + ": second param block of residual convs"
    ),
    "fc6_decay": _c("lr_mult 1, decay_mult 1, no bias", _SF_MODEL + ": fc6 param block; the layer has one blob"),
    "prelu_init": _c(
        0.25,
        "PReLU layers have no prelu_param: Caffe's default filler is constant 0.25, one slope per channel "
        "(BVLC/caffe src/caffe/layers/prelu_layer.cpp, channel_shared default false)",
    ),
    "prelu_decay": _c(
        "lr_mult 1, decay_mult 1",
        "PReLU layers have no param block, so Caffe's ParamSpec defaults (lr_mult 1, decay_mult 1) apply: "
        "the slopes are weight-decayed",
    ),
    "weight_renormalised": _c(
        True, _SF_LAYER + ": Forward normalises each fc6 weight row in place (Weight_norm_gpu) every step"
    ),
    "gradient_normalised": _c(
        True,
        "wy1iu/sphereface README.md Note 1 'Backward gradient': the x-gradient of the target logit is "
        "(coeff_w w + coeff_x x) / sqrt(coeff_w^2 + coeff_x^2), not the exact gradient",
    ),
}

# SphereFace-64: only model/deploy prototxts are released, no solver.
SPHEREFACE_64 = {
    "batch_per_gpu": _c(
        256, "wy1iu/sphereface train/model_lib/Sphereface-64/sphereface_64_model.prototxt: batch_size: 256"
    ),
    "fillers_and_head": _c(
        "as SphereFace-20 (xavier / gaussian 0.01, QUADRUPLE, base 1000, gamma 0.12, power 1, lambda_min 5)",
        "wy1iu/sphereface train/model_lib/Sphereface-64/sphereface_64_model.prototxt",
    ),
    "solver": _c(
        "not released; the SphereFace-20 solver is the only one",
        "wy1iu/sphereface: no solver under train/model_lib/Sphereface-64/",
    ),
}

# The first public commit (966c44c, 2017-07-20) shipped a different 28-layer
# centre-face-style net under train/code/sphereface/ with batch_size 128 (x 2
# GPUs) and the same solver; the released model does not come from it.
SPHEREFACE_INITIAL_COMMIT = {
    "batch_per_gpu": _c(
        128, "wy1iu/sphereface train/code/sphereface/sphereface_model.prototxt (commit 966c44c): batch_size: 128"
    ),
    "solver": _c(
        "identical to the later solver",
        "wy1iu/sphereface train/code/sphereface/sphereface_solver.prototxt (commit 966c44c)",
    ),
}

# --------------------------------------------------------------------------
# L-Softmax (wy1iu/LargeMargin_Softmax_Loss), for the LSoftmax head defaults.
# --------------------------------------------------------------------------
_LS_MNIST = "wy1iu/LargeMargin_Softmax_Loss myexamples/mnist/model/mnist_train_test.prototxt (commit 7ef9bd5)"
_LS_CIFAR = "wy1iu/LargeMargin_Softmax_Loss myexamples/cifar10/model/cifar_train_test.prototxt (commit 7ef9bd5)"
LSOFTMAX_MNIST = {
    "margin": _c(4, _LS_MNIST + ": ip2 LargeMarginInnerProduct type: QUADRUPLE"),
    "lambda_base": _c(1000.0, _LS_MNIST + ": base: 1000"),
    "lambda_gamma": _c(0.000025, _LS_MNIST + ": gamma: 0.000025"),
    "lambda_power": _c(35.0, _LS_MNIST + ": power: 35"),
    "lambda_min": _c(0.0, _LS_MNIST + ": lambda_min: 0"),
    "iteration": _c(0, _LS_MNIST + ": iteration: 0 (incremented before use, as in SphereFace)"),
    "batch": _c(128, _LS_MNIST + ": data_param batch_size: 128"),
    "preprocess": _c("x - 127.5 (no scale)", _LS_MNIST + ": transform_param mean_value: 127.5"),
    "base_lr": _c(0.1, "wy1iu/LargeMargin_Softmax_Loss myexamples/mnist/mnist_solver.prototxt: base_lr: 0.1"),
    "lr_steps": _c(
        [5000, 7500, 10000],
        "myexamples/mnist/mnist_solver.prototxt: multistep gamma 0.1, stepvalue 5000, 7500, 10000, 30000",
    ),
    "max_iter": _c(30000, "myexamples/mnist/mnist_solver.prototxt: max_iter: 30000"),
    "momentum": _c(0.9, "myexamples/mnist/mnist_solver.prototxt: momentum: 0.9"),
    "l2_decay": _c(0.0005, "myexamples/mnist/mnist_solver.prototxt: weight_decay: 0.0005"),
}
LSOFTMAX_CIFAR10 = {
    "margin": _c(2, _LS_CIFAR + ": ip2 LargeMarginInnerProduct type: DOUBLE"),
    "lambda_base": _c(1000.0, _LS_CIFAR + ": base: 1000"),
    "lambda_gamma": _c(0.00002, _LS_CIFAR + ": gamma: 0.00002"),
    "lambda_power": _c(45.0, _LS_CIFAR + ": power: 45"),
    "lambda_min": _c(
        0.0, _LS_CIFAR + ": lambda_min not set (proto default; the MNIST example sets 0 explicitly)", verified=False
    ),
    "batch": _c(128, _LS_CIFAR + ": image_data_param batch_size: 128"),
    "lr_steps": _c(
        [5000, 7500],
        "myexamples/cifar10/cifar_solver.prototxt: base_lr 0.1, multistep gamma 0.1, stepvalue 5000, 7500, "
        "30000; max_iter 30000; momentum 0.9; weight_decay 0.0005",
    ),
}

# --------------------------------------------------------------------------
# CosFace (arXiv 1801.09414). The paper's text is not in the stored corpus.
# --------------------------------------------------------------------------
_COSFACE_UNVERIFIED = "CosFace paper sec. 4.1 / Table 9: paper text not found in the stored corpus"
COSFACE = {
    "scale": _c(64.0, _COSFACE_UNVERIFIED, verified=False),
    "margin": _c(0.35, _COSFACE_UNVERIFIED, verified=False),
    "third_party_casia": _c(
        "SGD lr 0.1, steps 16000/24000, momentum 0.9, wd 5e-4, batch 512, sphere20, 112x96, (x-127.5)/127.5",
        "MuggleWang/CosFace_pytorch main.py argparse defaults (a reproduction, not the authors' code)",
    ),
}

# --------------------------------------------------------------------------
# insightface arcface_torch (train_v2.py era: configs with margin_list).
# --------------------------------------------------------------------------
_AF_R50 = "deepinsight/insightface recognition/arcface_torch/configs/ms1mv2_r50.py (commit d9cb10e)"
_AF_R100 = "deepinsight/insightface recognition/arcface_torch/configs/ms1mv2_r100.py (commit 4df192b)"
_AF_MBF = "deepinsight/insightface recognition/arcface_torch/configs/ms1mv2_mbf.py (commit d9cb10e)"
_AF_TRAIN = "deepinsight/insightface recognition/arcface_torch/train_v2.py"
_AF_SCHED = "deepinsight/insightface recognition/arcface_torch/lr_scheduler.py (commit dfa209d) PolyScheduler"
_AF_README = "deepinsight/insightface recognition/arcface_torch/README.md"
ARCFACE_TORCH = {
    "margin_list": _c((1.0, 0.5, 0.0), _AF_R50 + " / " + _AF_R100 + ": margin_list = (1.0, 0.5, 0.0) (ArcFace m=0.5)"),
    "scale": _c(64.0, _AF_TRAIN + ": CombinedMarginLoss(64, *cfg.margin_list, ...) (s hard-coded)"),
    "embedding_dim": _c(512, _AF_R50 + ": embedding_size = 512"),
    "sample_rate": _c(1.0, _AF_R50 + ": sample_rate = 1.0 (no Partial FC sampling)"),
    "momentum": _c(0.9, _AF_R50 + ": momentum = 0.9; " + _AF_TRAIN + ": SGD(momentum=0.9)"),
    "l2_decay_r50": _c(1e-4, _AF_R50 + ": weight_decay = 1e-4 (torch SGD: coupled)"),
    "l2_decay_r100": _c(5e-4, _AF_R100 + ": weight_decay = 5e-4 (torch SGD: coupled)"),
    "l2_decay_mbf": _c(1e-4, _AF_MBF + ": weight_decay = 1e-4"),
    "decay_applies_to": _c(
        "all parameters: backbone (conv, BN gamma/beta, PReLU, biases) and the FC class weights",
        _AF_TRAIN + ": one SGD over [backbone.parameters(), module_partial_fc.parameters()] "
        "with weight_decay=cfg.weight_decay, no parameter groups",
    ),
    "batch_per_gpu": _c(128, _AF_R50 + ": batch_size = 128 (per GPU: DataLoader batch in each process)"),
    "num_gpus": _c(
        8,
        _AF_README + ": 'To run on a machine with 8 GPUs: torchrun --nproc_per_node=8 train_v2.py ...'; "
        "the MS1MV2 rows are under 'Training on Single-Host GPU'",
    ),
    "global_batch": _c(1024, "128 per GPU x 8 GPUs; " + _AF_TRAIN + ": cfg.total_batch_size = batch_size * world_size"),
    "lr": _c(0.1, _AF_R50 + ": lr = 0.1; " + _AF_TRAIN + ": SGD(lr=cfg.lr), not scaled by batch"),
    "lr_scaled_in_old_train_py": _c(
        "lr / 512 * batch_size * world_size (0.2 at 128 x 8)",
        "deepinsight/insightface recognition/arcface_torch/train.py (commit d873824, config.py era): "
        "SGD(lr=cfg.lr / 512 * cfg.batch_size * world_size), step schedule per epoch from config.lr_func",
    ),
    "scheduler": _c("polynomial, power 2, per step, to 0", _AF_SCHED + ": power = 2; lr = base_lr * (1 - t/T) ** 2"),
    "warmup_epoch": _c(0, _AF_R50 + ": warmup_epoch = 0"),
    "num_epoch_r50_r100": _c(20, _AF_R50 + " / " + _AF_R100 + ": num_epoch = 20"),
    "num_epoch_mbf": _c(40, _AF_MBF + ": num_epoch = 40"),
    "num_image": _c(5822653, _AF_R50 + ": num_image = 5822653"),
    "num_classes": _c(85742, _AF_R50 + ": num_classes = 85742"),
    "steps_per_epoch": _c(
        5686, _AF_TRAIN + ": total_step = num_image // total_batch_size * num_epoch; 5822653 // 1024"
    ),
    "total_steps": _c(113720, "5686 x 20"),
    "grad_clip": _c(5.0, _AF_TRAIN + ": clip_grad_norm_(backbone.parameters(), 5) (backbone only)"),
    "fp16": _c(True, _AF_R50 + ": fp16 = True"),
    "input_shape": _c((112, 112, 3), "deepinsight/insightface recognition/arcface_torch/dataset.py: 112x112 MXNet rec"),
    "preprocess_scale": _c(
        1.0 / 127.5,
        "deepinsight/insightface recognition/arcface_torch/dataset.py: ToTensor + Normalize(mean 0.5, std 0.5) "
        "= (x - 127.5) / 127.5; RandomHorizontalFlip",
    ),
    "preprocess_offset": _c(-1.0, "as preprocess_scale"),
}

# MobileFaceNet paper (arXiv 1804.07573): not in the stored corpus.
MOBILEFACENET_PAPER = {
    "training": _c(
        "batch 512, lr 0.1 / 10 at 36k, 52k, 58k, stop 60k, wd 4e-5 (4e-4 on the last layers), 128-d",
        "MobileFaceNets paper sec. 4.1: paper text not found in the stored corpus (only its abstract)",
        verified=False,
    ),
}

# --------------------------------------------------------------------------
# davidsandberg/facenet.
# --------------------------------------------------------------------------
_FN_TRIPLET = "davidsandberg/facenet src/train_tripletloss.py (commit 2d7bed5) argparse default"
FACENET_TRIPLET = {
    "people_per_batch": _c(45, _FN_TRIPLET + ": --people_per_batch 45"),
    "images_per_person": _c(40, _FN_TRIPLET + ": --images_per_person 40"),
    "sampling_pool": _c(
        1800,
        _FN_TRIPLET + ": 45 x 40 images are embedded to *select* triplets; training then runs on the "
        "selected triplets in batches of --batch_size 90 (30 triplets). P x K is not the training batch.",
    ),
    "batch_size": _c(90, _FN_TRIPLET + ": --batch_size 90"),
    "alpha": _c(0.2, _FN_TRIPLET + ": --alpha 0.2"),
    "embedding_dim": _c(128, _FN_TRIPLET + ": --embedding_size 128"),
    "optimizer": _c("adagrad", _FN_TRIPLET + ": --optimizer ADAGRAD"),
    "learning_rate": _c(0.1, _FN_TRIPLET + ": --learning_rate 0.1 (decay factor 1.0: constant)"),
    "l2_decay": _c(0.0, _FN_TRIPLET + ": --weight_decay 0.0"),
    "epoch_size": _c(1000, _FN_TRIPLET + ": --epoch_size 1000 (batches per epoch)"),
    "max_nrof_epochs": _c(500, _FN_TRIPLET + ": --max_nrof_epochs 500"),
    "keep_probability": _c(1.0, _FN_TRIPLET + ": --keep_probability 1.0 (no dropout)"),
    "moving_average_decay": _c(0.9999, _FN_TRIPLET + ": --moving_average_decay 0.9999"),
    "model_def": _c("models.inception_resnet_v2", _FN_TRIPLET + ": --model_def default"),
    "image_size": _c(160, _FN_TRIPLET + ": --image_size 160"),
    "normalisation": _c(
        "embeddings = l2_normalize(prelogits); loss = mean(max(|a-p|^2 - |a-n|^2 + alpha, 0))",
        _FN_TRIPLET.replace(" argparse default", "") + " (tf.nn.l2_normalize) and src/facenet.py triplet_loss "
        "(reduce_sum of squares: squared Euclidean distance)",
    ),
    "image_standardisation": _c(
        "tf.image.per_image_standardization", _FN_TRIPLET.replace(" argparse default", "") + ": input pipeline"
    ),
}

_FN_SOFTMAX = "davidsandberg/facenet src/train_softmax.py (commit 000bf73) argparse default"
_FN_WIKI = (
    "davidsandberg/facenet wiki 'Classifier training of Inception-ResNet-v1' (CASIA-WebFace) command, as copied "
    "verbatim in many stored forks (e.g. a Makefile 'train' target): --optimizer ADAM --learning_rate -1 "
    "--max_nrof_epochs 150 --keep_probability 0.8 --random_crop --random_flip --use_fixed_image_standardization "
    "--learning_rate_schedule_file data/learning_rate_schedule_classifier_casia.txt --weight_decay 5e-4 "
    "--embedding_size 512 --validation_set_split_ratio 0.05 --prelogits_norm_loss_factor 5e-4"
)
_FN_CASIA_LR = (
    "davidsandberg/facenet data/learning_rate_schedule_classifier_casia.txt: 0: 0.1, 65: 0.01, 80: 0.001, 1000: 0.0001"
)
FACENET_SOFTMAX_CASIA = {
    "optimizer": _c("adam", _FN_WIKI),
    "adam_epsilon": _c(
        0.1,
        "davidsandberg/facenet src/facenet.py train(): AdamOptimizer(lr, beta1=0.9, beta2=0.999, epsilon=0.1)",
    ),
    "adam_beta_1": _c(0.9, "as adam_epsilon"),
    "adam_beta_2": _c(0.999, "as adam_epsilon"),
    "lr_values": _c([0.1, 0.01, 0.001], _FN_CASIA_LR + " (epoch 1000 is past max_nrof_epochs 150)"),
    "lr_boundaries_epochs": _c([65, 80], _FN_CASIA_LR),
    "max_nrof_epochs": _c(150, _FN_WIKI),
    "epoch_size": _c(1000, _FN_SOFTMAX + ": --epoch_size 1000 (batches per epoch; the command keeps it)"),
    "batch_size": _c(90, _FN_SOFTMAX + ": --batch_size 90 (the command keeps it)"),
    "l2_decay": _c(
        5e-4,
        _FN_WIKI + "; src/models/inception_resnet_v1.py: slim.l2_regularizer(weight_decay) = wd * sum(w^2) / 2 "
        "added to the loss, i.e. coupled grad += wd * w (conv and fully-connected weights only)",
    ),
    "embedding_dim": _c(512, _FN_WIKI),
    "keep_probability": _c(0.8, _FN_WIKI + " (dropout rate 0.2 before the bottleneck)"),
    "prelogits_norm_loss_factor": _c(5e-4, _FN_WIKI + " (p = 1: " + _FN_SOFTMAX + " --prelogits_norm_p 1.0)"),
    "center_loss_factor": _c(0.0, _FN_SOFTMAX + ": --center_loss_factor 0.0; the command does not set it"),
    "center_loss_alfa_default": _c(0.95, _FN_SOFTMAX + ": --center_loss_alfa 0.95"),
    "moving_average_decay": _c(0.9999, _FN_SOFTMAX + ": --moving_average_decay 0.9999"),
    "image_size": _c(160, _FN_SOFTMAX + ": --image_size 160 (182 px aligned, random crop to 160)"),
    "fixed_standardization": _c(
        "(x - 127.5) / 128",
        "davidsandberg/facenet src/facenet.py create_input_pipeline(): FIXED_STANDARDIZATION -> "
        "(tf.cast(image, tf.float32) - 127.5)/128.0",
    ),
    "vggface2_schedule": _c(
        "data/learning_rate_schedule_classifier_vggface2.txt",
        "not in the stored copy of davidsandberg/facenet data/ (only the _casia and _long schedules)",
        verified=False,
    ),
}

_FN_CENTER = "davidsandberg/facenet src/facenet.py center_loss()"
FACENET_CENTER_LOSS = {
    "update": _c(
        "c_y <- c_y - (1 - alfa) * (c_y - x), one scatter_sub per sample (repeats of a class accumulate)",
        _FN_CENTER + ": diff = (1 - alfa) * (centers_batch - features); tf.scatter_sub(centers, label, diff)",
    ),
    "loss": _c(
        "mean over batch AND feature dims of (x - c_y)^2, times center_loss_factor",
        _FN_CENTER + ": tf.reduce_mean(tf.square(features - centers_batch)); train_softmax adds it x factor",
    ),
    "centre_init": _c(0.0, _FN_CENTER + ": constant_initializer(0), trainable=False"),
}

_FN_IRV1 = "davidsandberg/facenet src/models/inception_resnet_v1.py (commit 05849dd) inference()"
FACENET_INCEPTION_RESNET_V1 = {
    "bn_decay": _c(0.995, _FN_IRV1 + ": batch_norm_params decay 0.995"),
    "bn_epsilon": _c(0.001, _FN_IRV1 + ": epsilon 0.001"),
    "bn_scale": _c(False, _FN_IRV1 + ": no 'scale' key, slim.batch_norm default scale=False (no gamma)"),
    "weights_initializer": _c(
        "truncated_normal stddev 0.1", _FN_IRV1 + ": tf.truncated_normal_initializer(stddev=0.1)"
    ),
    "weights_initializer_2018": _c(
        "xavier (slim.initializers.xavier_initializer) with a Bottleneck layer",
        "later versions of the same file (with bottleneck_layer_size); not read in full here",
        verified=False,
    ),
}

# --------------------------------------------------------------------------
# Centre loss on MNIST (ydwen/caffe-face mnist_example; the stored copy sits
# under BVLC/caffe history, commit dcb8c1e).
# --------------------------------------------------------------------------
_CF_SOLVER = "ydwen/caffe-face mnist_example/mnist_solver.prototxt (stored as BVLC/caffe commit dcb8c1e)"
_CF_NET = "ydwen/caffe-face mnist_example/mnist_train_test.prototxt ('LeNet++', stored as BVLC/caffe commit dcb8c1e)"
CENTER_LOSS_MNIST = {
    "optimizer": _c("sgd", _CF_SOLVER),
    "base_lr": _c(0.01, _CF_SOLVER + ": base_lr: 0.01"),
    "lr_gamma": _c(0.8, _CF_SOLVER + ': lr_policy: "multistep", gamma: 0.8'),
    "lr_values": _c([0.01, 0.008, 0.0064], _CF_SOLVER + ": 0.01 x 0.8^k"),
    "lr_boundaries_steps": _c([5000, 8000], _CF_SOLVER + ": stepvalue 5000, 8000, 10000; max_iter 10000"),
    "max_iter": _c(10000, _CF_SOLVER + ": max_iter: 10000"),
    "momentum": _c(0.9, _CF_SOLVER + ": momentum: 0.9"),
    "l2_decay": _c(0.0005, _CF_SOLVER + ": weight_decay: 0.0005"),
    "batch": _c(128, _CF_NET + ": data_param batch_size: 128"),
    "preprocess_scale": _c(0.0078125, _CF_NET + ": mean_value: 127.5, scale: 0.0078125"),
    "preprocess_offset": _c(-127.5 * 0.0078125, _CF_NET + ": (x - 127.5) / 128"),
    "embedding_dim": _c(2, _CF_NET + ": ip1 num_output: 2, then PReLU"),
    "num_classes": _c(10, _CF_NET + ": ip2 num_output: 10, bias_term: false"),
    "activation": _c("PReLU (Caffe default 0.25, per channel)", _CF_NET + ": prelu1.. preluip1"),
    "fillers": _c("xavier, biases 0 (lr_mult 2, decay_mult 0)", _CF_NET),
    "center_loss_weight": _c(0.01, _CF_NET + ": center_loss loss_weight: 0.01"),
    "center_loss_form": _c(
        "loss_weight * sum_i |x_i - c_yi|^2 / M / 2",
        "caffe-face CenterLossLayer::Forward_cpu: loss = dot / M_ / 2 (seen in the stored caffe-face forks)",
    ),
    "center_update": _c(
        "centre diff = sum_{y_i=j}(c_j - x_i) / (1 + n_j), applied by the SGD solver: lr x lr_mult (1) with "
        "momentum 0.9, decay_mult 0",
        _CF_NET + ": center_loss param { lr_mult: 1 decay_mult: 0 }; CenterLossLayer::Backward_cpu "
        "caffe_axpy(1 / (count + 1), variation_sum) into the centre diff (stored caffe-face forks)",
    ),
}

# --------------------------------------------------------------------------
# SphereReID: the paper (arXiv 1807.00537) is not in the stored corpus; the
# PyTorch code below is a third-party reproduction (network D).
# --------------------------------------------------------------------------
_SR = "CoinCheung/SphereReID (third-party reproduction) train.py"
SPHEREREID = {
    "optimizer": _c("adam", _SR + ": torch.optim.Adam(params, lr=1e-3, weight_decay=5e-4)"),
    "adam_betas": _c((0.9, 0.999), _SR + ": torch Adam defaults (not set)"),
    "adam_epsilon": _c(1e-8, _SR + ": torch Adam default"),
    "l2_decay": _c(5e-4, _SR + ": Adam(weight_decay=5e-4) (torch Adam: coupled L2)"),
    "base_lr": _c(1e-3, _SR + ": start_lr = 1e-3"),
    "warmup_epochs": _c(20, _SR + ": warmup_epoch = 20"),
    "warmup_start": _c(5e-5, _SR + ": warmup_lr = 5e-5"),
    "warmup_shape": _c(
        "exponential: lr = 5e-5 * (1e-3 / 5e-5) ** (epoch / 20), per epoch",
        _SR + ": lr_scheduler(): warmup_lr * warmup_scale ** epoch",
    ),
    "lr_boundaries_epochs": _c([80, 100], _SR + ": lr_steps = [80, 100], lr_factor 0.1"),
    "lr_values": _c([1e-3, 1e-4, 1e-5], _SR + ": start_lr x 0.1^k"),
    "epochs": _c(140, _SR + ": for ep in range(140)"),
    "identities_per_batch": _c(16, _SR + ": BalancedSampler(dataset, 16, 4)"),
    "images_per_identity": _c(4, _SR + ": BalancedSampler(dataset, 16, 4)"),
    "batch": _c(64, "16 x 4"),
    "scale": _c(14.0, "CoinCheung/SphereReID sphere_loss.py: SphereLoss(scale=14)"),
    "embedding_dim": _c(1024, "CoinCheung/SphereReID backbone.py: fc 2048 -> 1024, then BatchNorm1d(1024)"),
    "dropout": _c(0.5, "CoinCheung/SphereReID backbone.py: BatchNorm1d(2048) -> Dropout(0.5) -> fc -> BatchNorm1d"),
    "last_stride": _c(1, "CoinCheung/SphereReID backbone.py: layer4 = create_layer(1024, 512, stride=1)"),
    "imagenet_init": _c(True, "CoinCheung/SphereReID backbone.py: loads torchvision resnet50-19c8e357.pth"),
    "input_shape": _c((256, 128, 3), "CoinCheung/SphereReID backbone.py: __main__ torch.randn(10, 3, 256, 128)"),
    "paper": _c(
        "Adam, warm-up, 256x128, s=14, 1024-d, P x K = 16 x 4",
        "SphereReID paper sec. 4: paper text not found in the stored corpus",
        verified=False,
    ),
}
