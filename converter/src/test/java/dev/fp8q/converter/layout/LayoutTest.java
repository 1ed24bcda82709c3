package dev.fp8q.converter.layout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.converter.quant.Scaling.Granularity;
import org.junit.jupiter.api.Test;

/** Scale names and shapes as each runtime's loader registers them (read in their source; docs/INTEROP.md). */
class LayoutTest {

    private static final Scaling TENSOR = Scaling.PER_TENSOR;
    private static final Scaling CHANNEL = new Scaling(Granularity.CHANNEL, false);
    private static final Scaling BLOCK = new Scaling(Granularity.BLOCK, false);
    private static final String W = "model.layers.0.self_attn.q_proj.weight";

    @Test
    void transformersReadsWeightScaleInvForPerTensorToo() {
        // FP8Linear registers only weight_scale_inv; "weight_scale" gave missing + unexpected keys
        assertEquals(W + "_scale_inv", Layout.HF_FP8.scaleName(W, TENSOR));
        assertEquals(W + "_scale_inv", Layout.HF_FP8.scaleName(W, BLOCK));
        assertArrayEquals(new long[0], Layout.HF_FP8.scaleShape(new long[] {256, 128}, TENSOR));
    }

    @Test
    void vllmFp8NamesThePerTensorScaleWeightScale() {
        assertEquals(W + "_scale", Layout.VLLM_FP8.scaleName(W, TENSOR));
        assertEquals(W + "_scale_inv", Layout.VLLM_FP8.scaleName(W, BLOCK));
        assertArrayEquals(new long[] {2, 3}, Layout.VLLM_FP8.scaleShape(new long[] {200, 300}, BLOCK));
        assertEquals(Layout.VLLM_FP8, Layout.parse("vllm-fp8"));
    }

    @Test
    void modeloptShapesAreVllmsPerChannelAndPbWoShapes() {
        assertEquals(W + "_scale", Layout.MODELOPT.scaleName(W, CHANNEL));
        assertArrayEquals(new long[] {256}, Layout.MODELOPT.scaleShape(new long[] {256, 128}, CHANNEL));
        assertArrayEquals(new long[] {2, 1, 1, 1}, Layout.MODELOPT.scaleShape(new long[] {256, 128}, BLOCK));
        assertArrayEquals(new long[] {256, 1}, Layout.COMPRESSED_TENSORS.scaleShape(new long[] {256, 128}, CHANNEL));
    }

    @Test
    void refusalsNameTheReason() {
        assertTrue(Layout.MODELOPT.refusal(TENSOR).contains("input_scale"));
        assertNull(Layout.MODELOPT.refusal(CHANNEL));
        assertNull(Layout.MODELOPT.refusal(BLOCK));
        assertNotNull(Layout.VLLM_FP8.refusal(CHANNEL));
        assertNotNull(Layout.HF_FP8.refusal(CHANNEL));
        assertNull(Layout.HF_FP8.refusal(TENSOR));
        // ComfyUI passes weight_scale to torch._scaled_mm as stored: float32 only
        assertTrue(Layout.COMFY.refusal(TENSOR.withBf16Scales(true)).contains("float32"));
        assertNotNull(Layout.COMFY_LEGACY.refusal(TENSOR.withBf16Scales(true)));
        assertNull(Layout.COMPRESSED_TENSORS.refusal(TENSOR.withBf16Scales(true)));
    }

    @Test
    void blockShapesALoaderWouldMisreadAreKeptInHighPrecision() {
        // FP8_PB_WO: both sides multiples of 128
        assertNull(Layout.MODELOPT.shapeRefusal(new long[] {256, 384}, BLOCK));
        assertNotNull(Layout.MODELOPT.shapeRefusal(new long[] {256, 320}, BLOCK));
        assertNotNull(Layout.MODELOPT.shapeRefusal(new long[] {64, 64}, BLOCK));
        // compressed-tensors: "requires strict division", then a shape error in the forward
        assertNotNull(Layout.COMPRESSED_TENSORS.shapeRefusal(new long[] {320, 256}, BLOCK));
        assertNull(Layout.COMPRESSED_TENSORS.shapeRefusal(new long[] {384, 256}, BLOCK));
        assertNull(Layout.COMPRESSED_TENSORS.shapeRefusal(new long[] {320, 256}, CHANNEL));
        // transformers derives the tile from weight / grid: right for whole tiles and for sides under 128 only
        assertNull(Layout.HF_FP8.shapeRefusal(new long[] {64, 384}, BLOCK));
        assertNotNull(Layout.HF_FP8.shapeRefusal(new long[] {192, 256}, BLOCK)); // 192 / 2 tiles would read as 96
        assertNull(Layout.VLLM_FP8.shapeRefusal(new long[] {192, 256}, BLOCK));
        assertNull(Layout.HF_FP8.shapeRefusal(new long[] {192, 256}, TENSOR));
    }
}
