using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Acornima.Ast;
using CrmEngine.Abstractions.Rules;
using Jint;
using Jint.Native;
using Jint.Runtime;
using Jint.Runtime.Interop;
using Microsoft.Extensions.Options;

namespace CrmEngine.Rules.Scripting;

/// <summary>
/// The sandboxed runner. Scripts are parsed once (<see cref="Engine.PrepareScript"/>); runs go to a
/// small set of worker threads (large stacks), each owning its Jint engines (one per recursion
/// limit). Every engine is strict, has no CLR access and no string compilation, and its built-ins
/// and global object are frozen before any user code runs; a run's locals live in the call of the
/// script's function, so nothing survives from one run to the next. An engine that was stopped by a
/// budget (or faulted) is thrown away and rebuilt.
/// </summary>
public sealed class JsRuleEngine : IRuleEngine, IDisposable
{
    private const int MaxNesting = 200;
    private readonly RulesOptions _options;
    private readonly TimeProvider _time;
    private readonly BlockingCollection<Action<Worker>> _queue = new();
    private readonly Worker[] _workers;

    public JsRuleEngine(IOptions<RulesOptions> options, TimeProvider? timeProvider = null)
        : this(options?.Value ?? throw new ArgumentNullException(nameof(options)), timeProvider)
    {
    }

    public JsRuleEngine(RulesOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        DefaultBudget = new RuleBudget(options.Timeout, options.MaxStatements, options.MaxMemoryBytes, options.MaxRecursion);
        var count = options.Workers > 0 ? options.Workers : Math.Max(1, Environment.ProcessorCount);
        _workers = Enumerable.Range(0, count).Select(i => new Worker(this, i)).ToArray();
    }

    public RuleBudget DefaultBudget { get; }

    internal RulesOptions Options => _options;

    internal int WorkerCount => _workers.Length;

    // ------------------------------------------------------------------ compile

    public IRuleScript Compile(RuleSource source, IReadOnlyList<string> parameters)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(parameters);
        var display = source.Path ?? source.Name;
        var code = source.Code ?? "";
        if (code.Length > _options.MaxScriptLength)
        {
            throw Refuse(display, 1, 1, $"the script is {code.Length} characters long; at most {_options.MaxScriptLength} are accepted");
        }

        CheckNesting(display, code);
        var header = ScriptHeader.Parse(code);
        var budget = ScriptHeader.Budget(display, header);
        foreach (var p in parameters)
        {
            if (p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') || char.IsAsciiDigit(p[0]))
            {
                throw new ArgumentException($"'{p}' is not a valid parameter name.", nameof(parameters));
            }
        }

        var prefix = "(function (" + string.Join(", ", parameters) + ") {";
        var wrapped = prefix + code + "\n})";
        Prepared<Script> prepared;
        try
        {
            prepared = Jint.Engine.PrepareScript(wrapped, display, strict: true);
        }
        catch (ScriptPreparationException prep) when (prep.InnerException is Acornima.ParseErrorException ex)
        {
            // Acornima reports 1-based lines and 0-based columns.
            var line = ex.LineNumber;
            var column = ex.Column + 1;
            if (line == 1)
            {
                column = Math.Max(1, column - prefix.Length);
            }

            var message = ex.Error?.Description ?? ex.Message ?? "";
            throw Refuse(display, line, column, "syntax error: " + message);
        }

        var body = prepared.Program!.Body;
        if (body.Count != 1 || body[0] is not NonSpecialExpressionStatement { Expression: FunctionExpression fn } || fn.Range.End != wrapped.Length - 1)
        {
            var at = body.Count > 0 ? body[0].Location.End : default;
            throw Refuse(display, Math.Max(1, at.Line), at.Column + 1,
                "the script closes a '}' it never opened: write the rule as the body of a function, ending with return");
        }

        return new JsRuleScript
        {
            Name = source.Name,
            Path = source.Path,
            Hash = HashOf(code),
            Code = code,
            Header = header.ToDictionary(p => p.Key, p => p.Value.Value, StringComparer.Ordinal),
            Budget = DefaultBudget.With(budget),
            Parameters = parameters.ToArray(),
            PrefixLength = prefix.Length,
            Prepared = prepared,
        };
    }

    /// <summary>
    /// "1.2 ms of 500 ms, 42 of 100000 statements, 3.1 KB of 16384 KB memory, call depth 3 of 64": each budget, used and limit
    /// (dry runs print it; budget errors carry it).
    /// </summary>
    public static string Describe(RuleUsage usage)
    {
        ArgumentNullException.ThrowIfNull(usage);
        var l = usage.Limits;
        var c = System.Globalization.CultureInfo.InvariantCulture;
        string Of(string used, object? limit, string unit) => limit is null ? used + unit : string.Create(c, $"{used}{unit} of {limit}{unit}");
        return string.Join(", ",
            Of(usage.Elapsed.TotalMilliseconds.ToString("0.###", c), l?.Time?.TotalMilliseconds, " ms"),
            Of(usage.Statements.ToString(c), l?.Statements, "") + " statements",
            Of((usage.AllocatedBytes / 1024.0).ToString("0.#", c), l?.MemoryBytes / 1024, " KB") + " memory",
            "call depth " + Of(usage.CallDepth.ToString(c), l?.RecursionDepth, ""));
    }

    /// <summary>
    /// Jint keeps the call stack depth to itself; it is read through a compiled accessor of its internal
    /// <c>Engine.CallStack.Count</c>. Null when a Jint version has no such member: depth is then reported as 0.
    /// </summary>
    private static readonly Func<Jint.Engine, int>? CallDepthOf = BuildCallDepthAccessor();

    private static Func<Jint.Engine, int>? BuildCallDepthAccessor()
    {
        try
        {
            var engine = System.Linq.Expressions.Expression.Parameter(typeof(Jint.Engine), "engine");
            var stack = System.Linq.Expressions.Expression.Field(engine, "CallStack");
            var count = System.Linq.Expressions.Expression.Property(stack, "Count");
            var body = count.Type == typeof(int) ? (System.Linq.Expressions.Expression)count : System.Linq.Expressions.Expression.Convert(count, typeof(int));
            return System.Linq.Expressions.Expression.Lambda<Func<Jint.Engine, int>>(body, engine).Compile();
        }
#pragma warning disable CA1031 // depth reporting is optional; the recursion limit itself is Jint's own check
        catch (Exception)
        {
            return null;
        }
#pragma warning restore CA1031
    }

    public static string HashOf(string code) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(code)))[..16];

    private static RuleCompileException Refuse(string script, int line, int column, string message) =>
        new(new RuleError(script, line, column, RuleErrorKind.Syntax, RuleBudgetKind.None, message));

    /// <summary>Deeply nested brackets would make the parser recurse on the host's stack: refuse them first.</summary>
    private static void CheckNesting(string display, string code)
    {
        int depth = 0, line = 1, column = 0;
        foreach (var c in code)
        {
            column++;
            if (c == '\n') { line++; column = 0; }
            else if (c is '(' or '[' or '{')
            {
                if (++depth > MaxNesting)
                {
                    throw Refuse(display, line, column, $"brackets are nested more than {MaxNesting} levels deep");
                }
            }
            else if (c is ')' or ']' or '}')
            {
                depth = Math.Max(0, depth - 1);
            }
        }
    }

    // ------------------------------------------------------------------ run

    public Task<RuleRunResult> RunAsync(IRuleScript script, IReadOnlyList<object?> arguments, RuleRunOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(script);
        ArgumentNullException.ThrowIfNull(arguments);
        var js = script as JsRuleScript ?? throw new ArgumentException("The script was not compiled by this engine.", nameof(script));
        var completion = new TaskCompletionSource<RuleRunResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Add(w => completion.TrySetResult(w.Run(js, arguments, options ?? Default, cancellationToken)), cancellationToken);
        return completion.Task;
    }

    private static readonly RuleRunOptions Default = new();

    /// <summary>
    /// Runs one script over many argument lists, spread over the workers in chunks (full rebuilds).
    /// Results are in input order.
    /// </summary>
    public Task<RuleRunResult[]> RunManyAsync(IRuleScript script, IReadOnlyList<IReadOnlyList<object?>> argumentLists,
        RuleRunOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(script);
        ArgumentNullException.ThrowIfNull(argumentLists);
        var js = script as JsRuleScript ?? throw new ArgumentException("The script was not compiled by this engine.", nameof(script));
        var results = new RuleRunResult[argumentLists.Count];
        if (results.Length == 0)
        {
            return Task.FromResult(results);
        }

        var chunk = Math.Max(16, Math.Min(512, results.Length / (_workers.Length * 4) + 1));
        var pending = (results.Length + chunk - 1) / chunk;
        var completion = new TaskCompletionSource<RuleRunResult[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        for (var start = 0; start < results.Length; start += chunk)
        {
            var from = start;
            var to = Math.Min(results.Length, start + chunk);
            _queue.Add(w =>
            {
                for (var i = from; i < to; i++)
                {
                    results[i] = w.Run(js, argumentLists[i], options ?? Default, cancellationToken);
                }

                if (Interlocked.Decrement(ref pending) == 0)
                {
                    completion.TrySetResult(results);
                }
            }, cancellationToken);
        }

        return completion.Task;
    }

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.CompleteAdding();
        foreach (var w in _workers)
        {
            w.Join();
        }

        _queue.Dispose();
    }

    // ------------------------------------------------------------------ workers

    /// <summary>One thread with its own engines. Jint engines are single-threaded; nothing here is shared.</summary>
    internal sealed class Worker
    {
        private readonly JsRuleEngine _owner;
        private readonly Thread _thread;
        private readonly Dictionary<int, Slot> _slots = [];

        // State of the run in progress (read by the host functions).
        private long _nowMs;
        private List<string> _log = [];
        private int _logDropped;
        private List<RuleFieldRead>? _reads;
        private HashSet<string>? _readPaths;
        private IReadOnlyDictionary<string, RuleFunction>? _functions;
        private Slot? _current;

        public Worker(JsRuleEngine owner, int index)
        {
            _owner = owner;
            _thread = new Thread(Loop, 64 * 1024 * 1024) { IsBackground = true, Name = $"crm-rules-{index}" };
            _thread.Start();
        }

        public void Join() => _thread.Join(TimeSpan.FromSeconds(10));

        private void Loop()
        {
            foreach (var job in _owner._queue.GetConsumingEnumerable())
            {
                try
                {
                    job(this);
                }
#pragma warning disable CA1031 // a job must never take the worker down
                catch (Exception)
                {
                }
#pragma warning restore CA1031
            }
        }

        private sealed class Slot
        {
            public required Jint.Engine Engine { get; init; }
            public required BudgetConstraint Budget { get; init; }
            public required JsValue Tracer { get; init; }
            public Dictionary<long, JsValue> Functions { get; } = [];
        }

        private Slot SlotFor(int recursion)
        {
            if (_slots.TryGetValue(recursion, out var slot))
            {
                return slot;
            }

            var budget = new BudgetConstraint();
            var options = _owner._options;
            var engine = new Jint.Engine(o =>
            {
                o.Strict = true;
                o.Host.StringCompilationAllowed = false;
                o.Interop.Enabled = false;
                o.Interop.AllowGetType = false;
                o.Interop.AllowSystemReflection = false;
                o.Constraints.MaxRecursionDepth = recursion;
                o.Constraints.StackOverflowGuard = true;
                o.Constraints.MaxArraySize = (uint)options.MaxArrayLength;
                o.Constraints.RegexTimeout = options.Timeout;
                o.Json.MaxParseDepth = 64;
                o.TimeZone = TimeZoneInfo.Utc;
                o.Culture = System.Globalization.CultureInfo.InvariantCulture;
                o.Constraint(budget);
                // Jint's own accounting also charges deferred string concatenation (s += s): a hard ceiling.
                o.LimitMemory(Math.Max(options.MaxMemoryBytes * 4, 256L * 1024 * 1024));
            });
            budget.Where = () => engine.Advanced.StackTrace;
            if (CallDepthOf is { } depthOf)
            {
                budget.CallDepth = () => depthOf(engine);
            }

            var now = new ClrFunction(engine, "now", (_, _) => JsNumber.Create(_nowMs));
            var log = new ClrFunction(engine, "log", (_, args) =>
            {
                if (_log.Count < options.MaxLogLines)
                {
                    _log.Add(args.Length > 0 ? args[0].ToString() : "");
                }
                else
                {
                    _logDropped++;
                }

                return JsValue.Undefined;
            });
            var read = new ClrFunction(engine, "read", (_, args) =>
            {
                if (_reads is not null && args.Length >= 2)
                {
                    var path = args[0].ToString();
                    if (_readPaths!.Add(path) && _reads.Count < 1000)
                    {
                        object? value;
                        try
                        {
                            value = PlainValues.FromJs(args[1]);
                        }
                        catch (OutputTooLargeException)
                        {
                            value = "(too large to show)";
                        }

                        _reads.Add(new RuleFieldRead(path, value));
                    }
                }

                return JsValue.Undefined;
            });
            var setup = engine.Evaluate(Sandbox.Setup);
            var tracer = engine.Call(setup, JsValue.Undefined, [engine.Global, now, log, read]);
            slot = new Slot { Engine = engine, Budget = budget, Tracer = tracer };
            _slots[recursion] = slot;
            return slot;
        }

        private void Discard(int recursion)
        {
            if (_slots.Remove(recursion, out var slot))
            {
                slot.Engine.Dispose();
            }
        }

        public RuleRunResult Run(JsRuleScript script, IReadOnlyList<object?> arguments, RuleRunOptions options, CancellationToken cancel)
        {
            var budget = script.Budget.With(options.Budget);
            var recursion = budget.RecursionDepth ?? _owner._options.MaxRecursion;
            _nowMs = (options.Now ?? _owner._time.GetUtcNow()).ToUnixTimeMilliseconds();
            _log = [];
            _logDropped = 0;
            _reads = options.Trace ? [] : null;
            _readPaths = options.Trace ? new HashSet<string>(StringComparer.Ordinal) : null;
            _functions = options.Functions;
            object? value = null;
            RuleError? error = null;
            IReadOnlyList<object?> argumentsAfter = [];
            var discard = false;
            Slot? slot = null;
            var started = Stopwatch.GetTimestamp();
            try
            {
                slot = SlotFor(recursion);
                _current = slot;
                var engine = slot.Engine;
                if (!slot.Functions.TryGetValue(script.Id, out var fn))
                {
                    if (slot.Functions.Count > 1000)
                    {
                        slot.Functions.Clear();
                    }

                    fn = engine.Evaluate(script.Prepared);
                    slot.Functions[script.Id] = fn;
                }

                var raw = new JsValue[script.Parameters.Count];
                var passed = new JsValue[raw.Length];
                for (var i = 0; i < raw.Length; i++)
                {
                    if (script.Parameters[i] == "api")
                    {
                        raw[i] = passed[i] = Api(engine, slot);
                        continue;
                    }

                    raw[i] = PlainValues.ToJs(engine, i < arguments.Count ? arguments[i] : null);
                    passed[i] = options.Trace && raw[i] is Jint.Native.Object.ObjectInstance
                        ? engine.Call(slot.Tracer, JsValue.Undefined, [raw[i], new JsString(script.Parameters[i])])
                        : raw[i];
                }

                slot.Budget.Begin(budget, cancel);
                var returned = engine.Call(fn, JsValue.Undefined, passed);
                value = PlainValues.FromJs(returned);
                if (options.ReturnArguments)
                {
                    argumentsAfter = raw.Select((r, i) => script.Parameters[i] == "api" ? null : PlainValues.FromJs(r)).ToList();
                }

                slot.Budget.CheckSlow();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException || true)
            {
                (error, discard) = Describe(script, slot, ex);
            }
            finally
            {
                slot?.Budget.End();
                _current = null;
                _functions = null;
            }

            if (discard)
            {
                Discard(recursion);
            }

            if (_logDropped > 0)
            {
                _log.Add($"({_logDropped} more log lines dropped: at most {_owner._options.MaxLogLines} are kept)");
            }

            var limits = _owner.DefaultBudget.With(budget);
            var usage = new RuleUsage(Stopwatch.GetElapsedTime(started), slot?.Budget.Statements ?? 0, Math.Max(0, slot?.Budget.Allocated ?? 0))
            {
                CallDepth = slot?.Budget.MaxCallDepth ?? 0,
                Limits = limits,
            };
            if (error is { Kind: RuleErrorKind.Budget })
            {
                // The recorded error carries the whole budget report: which one broke, and how much of each was used.
                error = error with { Message = error.Message + " (used " + JsRuleEngine.Describe(usage) + ")" };
            }

            return new RuleRunResult
            {
                ScriptName = script.Name,
                ScriptHash = script.Hash,
                Value = error is null ? value : null,
                Error = error,
                Log = _log,
                Reads = _reads ?? (IReadOnlyList<RuleFieldRead>)[],
                Arguments = argumentsAfter,
                Usage = usage,
            };
        }

        /// <summary>The <c>api</c> argument: the host functions the caller offers for this run, as plain JS functions.</summary>
        private JsValue Api(Jint.Engine engine, Slot slot)
        {
            var api = new JsObject(engine);
            if (_functions is not null)
            {
                foreach (var (name, function) in _functions)
                {
                    api.FastSetDataProperty(name, new ClrFunction(engine, name, (_, args) =>
                    {
                        slot.Budget.CheckSlow();
                        var plain = args.Select(a => PlainValues.FromJs(a)).ToList();
                        object? result;
                        try
                        {
                            result = function(plain);
                        }
                        catch (ArgumentException ex)
                        {
                            throw new JavaScriptException(engine.Intrinsics.TypeError, name + ": " + ex.Message);
                        }
                        catch (InvalidOperationException ex)
                        {
                            throw new JavaScriptException(engine.Intrinsics.Error, name + ": " + ex.Message);
                        }

                        return PlainValues.ToJs(engine, result);
                    }));
                }
            }

            api.PreventExtensions();
            return api;
        }

        private static (RuleError Error, bool Discard) Describe(JsRuleScript script, Slot? slot, Exception ex)
        {
            var (line, column) = ex is BudgetExceededException be ? Position(script, be.Where) : (0, 0);
            switch (ex)
            {
                case BudgetExceededException b:
                    return (new RuleError(script.Display, line, column, RuleErrorKind.Budget, b.Kind, b.Message), true);
                case RecursionDepthOverflowException:
                    return (new RuleError(script.Display, line, column, RuleErrorKind.Budget, RuleBudgetKind.Recursion,
                        $"recursion budget of {slot?.Budget.Budget.RecursionDepth} nested calls exceeded"), true);
                case MemoryLimitExceededException:
                case OutOfMemoryException:
                    return (new RuleError(script.Display, line, column, RuleErrorKind.Budget, RuleBudgetKind.Memory, "memory budget exceeded"), true);
                case InsufficientExecutionStackException:
                    return (new RuleError(script.Display, line, column, RuleErrorKind.Budget, RuleBudgetKind.Recursion, "nesting too deep: the call stack is exhausted"), true);
                case OutputTooLargeException o:
                    return (new RuleError(script.Display, line, column, RuleErrorKind.Budget, RuleBudgetKind.Output, "the result is too large: " + o.Message), true);
                case JavaScriptException js:
                {
                    var l = js.Location.Start.Line;
                    var c = js.Location.Start.Column + 1;
                    if (l > 0)
                    {
                        (line, column) = (l, l == 1 ? Math.Max(1, c - script.PrefixLength) : c);
                    }

                    var text = js.Message;
                    if (text.Contains("Maximum call stack size exceeded", StringComparison.Ordinal))
                    {
                        return (new RuleError(script.Display, line, column, RuleErrorKind.Budget, RuleBudgetKind.Recursion, "nesting too deep: " + text), true);
                    }

                    var kind = js.Error is Jint.Native.Object.ObjectInstance o && o.Get("name").ToString() is { Length: > 0 } n && n != "Error" ? n + ": " : "";
                    if (text.Contains("Invalid array length", StringComparison.Ordinal) || text.Contains("Invalid string length", StringComparison.Ordinal))
                    {
                        return (new RuleError(script.Display, line, column, RuleErrorKind.Budget, RuleBudgetKind.Memory, kind + text), true);
                    }

                    return (new RuleError(script.Display, line, column, RuleErrorKind.Runtime, RuleBudgetKind.None, kind + text), false);
                }
                case ArgumentException a when slot is null || a.Source != "Jint":
                    return (new RuleError(script.Display, 0, 0, RuleErrorKind.Result, RuleBudgetKind.None, a.Message), false);
                default:
                    return (new RuleError(script.Display, line, column, RuleErrorKind.Runtime, RuleBudgetKind.None,
                        ex.GetType().Name + ": " + ex.Message), true);
            }
        }

        private static (int Line, int Column) Position(JsRuleScript script, string? stackTrace)
        {
            // Jint's stack trace: "   at name (file:line:column)" with the innermost frame first.
            var match = stackTrace is null ? null : System.Text.RegularExpressions.Regex.Match(stackTrace, @":(\d+):(\d+)\)?\s*(\r?\n|$)");
            if (match is null || !match.Success)
            {
                return (0, 0);
            }

            var line = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            var column = int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) + 1;
            return (line, line == 1 ? Math.Max(1, column - script.PrefixLength) : column);
        }
    }
}
