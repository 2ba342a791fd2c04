namespace CrmEngine.Abstractions.Rules;

/// <summary>
/// The engine's sandboxed JavaScript runner, a core service plugins may use for their own rule kinds.
/// A script is the body of a function: it receives the named parameters as plain JavaScript values
/// (copied from plain .NET values: null, bool, numbers, string, <see cref="DateTimeOffset"/>,
/// dictionaries with string keys, lists) and returns a value. Scripts never see .NET objects.
/// </summary>
public interface IRuleEngine
{
    /// <summary>The budget a script runs under unless its header or the caller asks for less (or more).</summary>
    RuleBudget DefaultBudget { get; }

    /// <summary>
    /// Checks and prepares a script once. Throws <see cref="RuleCompileException"/> naming the
    /// file, line and column when it does not compile or its header is wrong.
    /// </summary>
    IRuleScript Compile(RuleSource source, IReadOnlyList<string> parameters);

    /// <summary>
    /// Runs the script with <paramref name="arguments"/> (one per parameter) on a sandboxed engine.
    /// Never throws for script faults: errors and broken budgets come back in the result.
    /// </summary>
    Task<RuleRunResult> RunAsync(IRuleScript script, IReadOnlyList<object?> arguments, RuleRunOptions? options = null,
        CancellationToken cancellationToken = default);
}

/// <summary>A script's text and where it came from.</summary>
public sealed record RuleSource(string Name, string Code, string? Path = null);

/// <summary>A checked, prepared script. Immutable: a new version is a new instance with a new hash.</summary>
public interface IRuleScript
{
    string Name { get; }

    /// <summary>The file it came from, when it came from one.</summary>
    string? Path { get; }

    /// <summary>Version of the script: the first 16 hex digits of the SHA-256 of its text.</summary>
    string Hash { get; }

    string Code { get; }

    /// <summary>The header: leading <c>// @key value</c> comment lines, keys lower-case.</summary>
    IReadOnlyDictionary<string, string> Header { get; }

    /// <summary>The engine's default budget with the header's limits applied.</summary>
    RuleBudget Budget { get; }

    IReadOnlyList<string> Parameters { get; }
}

/// <summary>Limits of one run. A null member means "use the default".</summary>
public sealed record RuleBudget(
    TimeSpan? Time = null,
    long? Statements = null,
    long? MemoryBytes = null,
    int? RecursionDepth = null)
{
    /// <summary>This budget with every member that <paramref name="other"/> sets replaced by it.</summary>
    public RuleBudget With(RuleBudget? other) => other is null
        ? this
        : new RuleBudget(other.Time ?? Time, other.Statements ?? Statements, other.MemoryBytes ?? MemoryBytes,
            other.RecursionDepth ?? RecursionDepth);
}

/// <summary>Which limit stopped a run.</summary>
public enum RuleBudgetKind { None, Time, Statements, Memory, Recursion, Output }

public enum RuleErrorKind
{
    /// <summary>The script does not compile, or its header is wrong.</summary>
    Syntax,
    /// <summary>The script threw (its own <c>throw</c>, a TypeError, ...).</summary>
    Runtime,
    /// <summary>The script broke a budget (see <see cref="RuleError.Budget"/>).</summary>
    Budget,
    /// <summary>The script returned something the caller cannot use, or the host failed around it.</summary>
    Result,
}

/// <summary>What went wrong, where: <c>file:line:column: message</c>. Line and column are 1-based (0 when unknown).</summary>
public sealed record RuleError(string Script, int Line, int Column, RuleErrorKind Kind, RuleBudgetKind Budget, string Message)
{
    public override string ToString() => $"{Script}:{Line}:{Column}: {Message}";
}

/// <summary>A script was refused at compile time.</summary>
public sealed class RuleCompileException : Exception
{
    public RuleCompileException(RuleError error) : base(error?.ToString()) => Error = error!;

    public RuleCompileException() : this(new RuleError("", 0, 0, RuleErrorKind.Syntax, RuleBudgetKind.None, "")) { }
    public RuleCompileException(string message) : this(new RuleError("", 0, 0, RuleErrorKind.Syntax, RuleBudgetKind.None, message)) { }
    public RuleCompileException(string message, Exception inner) : base(message, inner) =>
        Error = new RuleError("", 0, 0, RuleErrorKind.Syntax, RuleBudgetKind.None, message);

    public RuleError Error { get; }
}

/// <summary>A host function a script may call, given plain values and returning a plain value.</summary>
public delegate object? RuleFunction(IReadOnlyList<object?> arguments);

public sealed record RuleRunOptions
{
    /// <summary>Record every field the script reads (slower; for dry runs and explanations).</summary>
    public bool Trace { get; init; }

    /// <summary>Overrides members of the script's budget for this run.</summary>
    public RuleBudget? Budget { get; init; }

    /// <summary>Copy the arguments back after the run (a pre-operation rule that sets fields).</summary>
    public bool ReturnArguments { get; init; }

    /// <summary>The time <c>dates.now()</c> answers; the engine's clock when null.</summary>
    public DateTimeOffset? Now { get; init; }

    /// <summary>Extra functions the script sees as members of the global <c>api</c> object during this run.</summary>
    public IReadOnlyDictionary<string, RuleFunction>? Functions { get; init; }
}

/// <summary>One field the script read, as a path from the parameter (<c>customer.orders.count</c>), and its value.</summary>
public sealed record RuleFieldRead(string Path, object? Value);

/// <summary>How much of the budget a run used.</summary>
public sealed record RuleUsage(TimeSpan Elapsed, long Statements, long AllocatedBytes)
{
    /// <summary>
    /// The deepest nesting of JavaScript function calls the run reached, counted as the recursion budget counts it: the
    /// script's body is level 1, each call of a function (the script's own or a helper) one more; a call in tail
    /// position (<c>return f(n - 1)</c>) does not nest.
    /// </summary>
    public int CallDepth { get; init; }

    /// <summary>The budget the run had: the engine's defaults with the script's and the caller's overrides applied.</summary>
    public RuleBudget? Limits { get; init; }
}

/// <summary>The outcome of one run; nothing is written by the engine itself.</summary>
public sealed record RuleRunResult
{
    public required string ScriptName { get; init; }
    public required string ScriptHash { get; init; }
    public bool Succeeded => Error is null;

    /// <summary>The returned value as a plain .NET value (null, bool, double, string, DateTimeOffset, dictionary, list).</summary>
    public object? Value { get; init; }

    public RuleError? Error { get; init; }

    /// <summary>What the script passed to <c>log(...)</c>, in order.</summary>
    public IReadOnlyList<string> Log { get; init; } = [];

    /// <summary>Fields read (only with <see cref="RuleRunOptions.Trace"/>), first read first.</summary>
    public IReadOnlyList<RuleFieldRead> Reads { get; init; } = [];

    /// <summary>The arguments after the run (only with <see cref="RuleRunOptions.ReturnArguments"/>).</summary>
    public IReadOnlyList<object?> Arguments { get; init; } = [];

    public required RuleUsage Usage { get; init; }
}
