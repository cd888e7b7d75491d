/** How deep `agent verify` goes: the stored bytes, the archive's content, or a restore into a throwaway server. */
export type VerifyDepth = 'objects' | 'archive' | 'restore';
export const VERIFY_DEPTHS: readonly VerifyDepth[] = ['objects', 'archive', 'restore'];
