package dev.fp8q.verifier.model;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.BlockMath;
import java.util.List;
import java.util.regex.Pattern;

/**
 * One family's whole model for the chained runs (verify --whole, sensitivity, plan's simulation): its inputs through
 * the checkpoint's own embeddings, its blocks in order on the shared {@link BlockMath} (CPU or GPU), and its head.
 * The model seam: a new family implements this beside {@link dev.fp8q.verifier.wan.WanModel} and
 * {@link dev.fp8q.verifier.qwen.QwenModel}, and every chained tool runs it.
 *
 * @param <S> the family's step: the streams entering block 0 and what its blocks and head condition on
 */
public interface ChainedModel<S extends ChainedModel.Step> {

    /** One input of the chained run. */
    interface Step {
        /** The residual streams entering block 0; the first is the one the head reads and drift is measured on. */
        float[][] streams();

        /** On the 0..1000 scale. */
        double timestep();

        String description();

        /** How the inputs were made, for the report. */
        List<String> notes();
    }

    /** "wan", "qwen-image". */
    String family();

    int layers();

    /** Matches a block tensor's name; group 1 is the block index. */
    Pattern blockName();

    /** Names of the streams, in {@link Step#streams()} order. */
    List<String> streamNames();

    /** Three timesteps spread over what this checkpoint serves; a note says which range and why. */
    List<Double> defaultTimesteps(String component, List<String> notes);

    /** The model's inputs at timestep t (0..1000) for one seed, through the given (reference) weights. */
    S inputs(double t, long seed, RunWeights reference) throws FormatException;

    /** Block b on the given streams; the streams are not modified. */
    float[][] block(int b, S step, float[][] streams, RunWeights w, BlockMath<?> math) throws FormatException;

    /** The model output (the velocity prediction, in token order) from the last block's streams. */
    float[] head(S step, float[][] streams, RunWeights w) throws FormatException;

    /** Every block in order from block {@code from}'s input streams, then the head. */
    default float[] output(S step, int from, float[][] streams, RunWeights w, BlockMath<?> math) throws FormatException {
        float[][] s = streams;
        for (int b = from; b < layers(); b++) {
            s = block(b, step, s, w, math);
        }
        return head(step, s, w);
    }
}
