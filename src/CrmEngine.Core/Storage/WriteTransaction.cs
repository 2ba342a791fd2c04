namespace CrmEngine.Core.Storage;

/// <summary>
/// The state of the one open LiteDB transaction on the writer thread. LiteDB has no savepoints,
/// so a nested write that fails after it changed something dooms the whole transaction: it is
/// rolled back at the end even if a handler caught the error.
/// </summary>
internal sealed class WriteTransaction
{
    private readonly List<Action> _afterCommit = [];

    public long StartSequence { get; init; }

    /// <summary>Inserts, updates and deletes made so far (used to tell a clean refusal from a half-done write).</summary>
    public long Modifications { get; set; }

    /// <summary>
    /// True when the write counts every change it makes in <see cref="Modifications"/> (the pipeline
    /// does). Other writes (direct <c>CrmDatabase.WriteAsync</c> callers) count nothing, so a failure
    /// of theirs is never taken for a clean refusal.
    /// </summary>
    public bool TracksModifications { get; set; }

    public Exception? DoomedBy { get; private set; }

    public void Doom(Exception cause) => DoomedBy ??= cause;

    public void AfterCommit(Action action) => _afterCommit.Add(action);

    internal IReadOnlyList<Action> AfterCommitActions => _afterCommit;
}
