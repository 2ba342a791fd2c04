using CrmEngine.Abstractions.Rules;
using Acornima.Ast;
using Jint;

namespace CrmEngine.Rules.Scripting;

/// <summary>A compiled script: its text wrapped as a function of its parameters, parsed once.</summary>
internal sealed class JsRuleScript : IRuleScript
{
    public required string Name { get; init; }
    public string? Path { get; init; }
    public required string Hash { get; init; }
    public required string Code { get; init; }
    public required IReadOnlyDictionary<string, string> Header { get; init; }
    public required RuleBudget Budget { get; init; }
    public required IReadOnlyList<string> Parameters { get; init; }

    /// <summary>Characters the wrapper adds in front of line 1 (subtracted from line-1 columns).</summary>
    public required int PrefixLength { get; init; }

    public required Prepared<Script> Prepared { get; init; }

    /// <summary>Unique per compiled instance: engines cache the evaluated function under it.</summary>
    public long Id { get; } = Interlocked.Increment(ref _next);

    private static long _next;

    /// <summary>What errors name: the file path when there is one, else the name.</summary>
    public string Display => Path ?? Name;

    public override string ToString() => $"{Name}@{Hash}";
}
