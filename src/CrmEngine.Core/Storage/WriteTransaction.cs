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

    public Exception? DoomedBy { get; private set; }

    public void Doom(Exception cause) => DoomedBy ??= cause;

    public void AfterCommit(Action action) => _afterCommit.Add(action);

    internal IReadOnlyList<Action> AfterCommitActions => _afterCommit;
}
