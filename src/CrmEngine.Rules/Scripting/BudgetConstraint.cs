using System.Diagnostics;
using CrmEngine.Abstractions.Rules;
using Jint;

namespace CrmEngine.Rules.Scripting;

/// <summary>
/// The per-run budget, checked by Jint before every statement: statements, wall-clock time,
/// bytes allocated on the running thread, and cancellation. One instance per engine; the
/// limits change per run (per-script budgets) without rebuilding the engine.
/// </summary>
internal sealed class BudgetConstraint : Constraint
{
    private bool _active;
    private long _maxStatements;
    private long _statements;
    private long _startTicks;
    private long _deadlineTicks;
    private long _memoryStart;
    private long _maxMemory;
    private CancellationToken _cancel;

    public long Statements => _statements;

    /// <summary>The deepest call nesting seen in this run (sampled before every statement).</summary>
    public int MaxCallDepth { get; private set; }

    /// <summary>Reads the engine's current call depth; null when this Jint version does not let us (then depth is not reported).</summary>
    public Func<int>? CallDepth { get; set; }

    public long Allocated => GC.GetAllocatedBytesForCurrentThread() - _memoryStart;

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_startTicks);

    public void Begin(RuleBudget budget, CancellationToken cancel)
    {
        _maxStatements = budget.Statements ?? long.MaxValue;
        _maxMemory = budget.MemoryBytes ?? long.MaxValue;
        _statements = 0;
        _startTicks = Stopwatch.GetTimestamp();
        var time = budget.Time ?? TimeSpan.FromSeconds(1);
        _deadlineTicks = _startTicks + (long)(time.TotalSeconds * Stopwatch.Frequency);
        _memoryStart = GC.GetAllocatedBytesForCurrentThread();
        _cancel = cancel;
        MaxCallDepth = 0;
        Budget = budget;
        _active = true;
    }

    public RuleBudget Budget { get; private set; } = new();

    /// <summary>Where the script is now (Jint's stack trace), read when a budget is broken.</summary>
    public Func<string>? Where { get; set; }

    private BudgetExceededException Broken(RuleBudgetKind kind, string message)
    {
        _active = false;
        string? where = null;
        try
        {
            where = Where?.Invoke();
        }
#pragma warning disable CA1031 // the position is a nicety; the budget error must still be raised
        catch (Exception)
        {
        }
#pragma warning restore CA1031

        return new BudgetExceededException(kind, message) { Where = where };
    }

    public void End() => _active = false;

    public override void Check()
    {
        if (!_active)
        {
            return;
        }

        if (CallDepth is { } depth && depth() is var d && d > MaxCallDepth)
        {
            MaxCallDepth = d;
        }

        if (++_statements > _maxStatements)
        {
            throw Broken(RuleBudgetKind.Statements, $"statement budget of {_maxStatements} exceeded");
        }

        if ((_statements & 0xF) == 0)
        {
            CheckSlow();
        }
    }

    /// <summary>Time, memory and cancellation (also called by host functions and after the run).</summary>
    public void CheckSlow()
    {
        if (!_active)
        {
            return;
        }

        if (Stopwatch.GetTimestamp() > _deadlineTicks)
        {
            throw Broken(RuleBudgetKind.Time, $"time budget of {Budget.Time?.TotalMilliseconds ?? 1000} ms exceeded");
        }

        if (GC.GetAllocatedBytesForCurrentThread() - _memoryStart > _maxMemory)
        {
            throw Broken(RuleBudgetKind.Memory, $"memory budget of {_maxMemory} bytes exceeded");
        }

        if (_cancel.IsCancellationRequested)
        {
            throw Broken(RuleBudgetKind.Time, "the run was cancelled");
        }
    }

    public override void Reset()
    {
        // Limits are set by Begin for each run; Jint's own resets must not clear them.
    }
}

/// <summary>A run broke its budget.</summary>
internal sealed class BudgetExceededException : Exception
{
    public BudgetExceededException(RuleBudgetKind kind, string message) : base(message) => Kind = kind;
    public BudgetExceededException() { }
    public BudgetExceededException(string message) : base(message) { }
    public BudgetExceededException(string message, Exception inner) : base(message, inner) { }

    public RuleBudgetKind Kind { get; }

    public string? Where { get; init; }
}
