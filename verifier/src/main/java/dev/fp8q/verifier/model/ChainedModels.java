package dev.fp8q.verifier.model;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.qwen.QwenModel;
import dev.fp8q.verifier.qwen.QwenNaming;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.WanModel;
import dev.fp8q.verifier.wan.WanNaming;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The chained model of a checkpoint, for every family that has one: where a new family is registered. */
public final class ChainedModels {

    /** Both families' attention heads are 128 wide. */
    public static final int HEAD_DIM = 128;

    private ChainedModels() {}

    /**
     * The checkpoint's whole model, or empty with no family that runs it (unknown names, a dim that is not a multiple
     * of 128, or a missing embedding or head: a checkpoint of blocks only).
     */
    public static Optional<ChainedModel<?>> of(Checkpoint source, RunWeights reference, int[] grid, int contextTokens,
            CapturedInputs captured) throws FormatException {
        Optional<QwenNaming> qwen = QwenNaming.detect(source);
        if (qwen.isPresent()) {
            QwenNaming n = qwen.get();
            long dim = source.tensor(n.block(0, "img_mod.1.weight")).map(t -> t.entry().rank() == 2 ? t.entry().dim(1) : 0)
                    .orElse(0L);
            boolean whole = dim > 0 && dim % HEAD_DIM == 0 && reference.has(n.top("txt_norm.weight"))
                    && reference.has(n.top("txt_in.weight"))
                    && reference.has(n.top("time_text_embed.timestep_embedder.linear_2.weight"))
                    && reference.has(n.top("norm_out.linear.weight")) && reference.has(n.top("proj_out.weight"));
            return whole ? Optional.of(new QwenModel(n, (int) dim, blockCount(source, n.blockPattern()), grid,
                    contextTokens, captured)) : Optional.empty();
        }
        Optional<WanNaming> wan = WanNaming.detect(source);
        if (wan.isPresent()) {
            WanNaming n = wan.get();
            int dim = reference.tensor(n.weight(WanNaming.Param.MODULATION, 0)).length / 6;
            boolean whole = dim % HEAD_DIM == 0 && reference.has(n.weight(WanNaming.Param.HEAD, 0))
                    && reference.has(n.weight(WanNaming.Param.PATCH, 0)) && reference.has(n.weight(WanNaming.Param.TEXT_0, 0));
            if (whole) {
                return Optional.of(new WanModel(n, dim, blockCount(source, WanModel.BLOCK_NAME), HEAD_DIM, grid, contextTokens,
                        captured, reference));
            }
        }
        return Optional.empty();
    }

    /** One more than the highest block index among the checkpoint's names. */
    public static int blockCount(Checkpoint c, Pattern block) {
        int max = -1;
        for (Checkpoint.Tensor t : c.tensors()) {
            Matcher m = block.matcher(t.name());
            if (m.find()) {
                max = Math.max(max, Integer.parseInt(m.group(1)));
            }
        }
        return max + 1;
    }
}
