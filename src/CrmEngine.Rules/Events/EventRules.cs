using System.Collections.Concurrent;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Rules;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Rules.Scripting;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Rules.Events;

/// <summary>The last outcome of one event rule (visible to operators).</summary>
public sealed record EventRuleStatus(string Name, string Hash, EventBinding Binding, long Runs, long Failures, string? LastError, DateTimeOffset? LastErrorAt);

/// <summary>A business rule stopped a write: the message names the script, line and column.</summary>
public sealed class RuleFailedException : StoreException
{
    public RuleFailedException(RuleError error) : base($"rule {error?.ToString()}") => Error = error!;
    public RuleFailedException() : this(new RuleError("", 0, 0, RuleErrorKind.Runtime, RuleBudgetKind.None, "")) { }
    public RuleFailedException(string message) : base(message) => Error = new RuleError("", 0, 0, RuleErrorKind.Runtime, RuleBudgetKind.None, message);
    public RuleFailedException(string message, Exception inner) : base(message, inner) => Error = new RuleError("", 0, 0, RuleErrorKind.Runtime, RuleBudgetKind.None, message);

    public RuleError Error { get; }
}

/// <summary>
/// Registers the scripts of <c>rules/events/</c> into the core pipeline, one handler per script,
/// at the entity, stage and order its header declares (owner <c>rules</c>, handler name
/// <c>rules:{name}</c>). The handler always runs the newest loaded version.
/// <list type="bullet">
/// <item>validate: return a text (or <c>{field, message}</c>, or a list of them), or call
/// <c>api.reject(field, message)</c>, to refuse the write with that message.</item>
/// <item>pre: set fields on <c>record</c>; the writable ones (see <see cref="RecordMapping"/>) are copied to the entity.</item>
/// <item>post / async: <c>api.addTag(tag)</c>, <c>api.removeTag(tag)</c>, <c>api.createActivity({...})</c>; the
/// writes are made after the script finished, through the pipeline (so the depth guard applies).</item>
/// <item>async only: <c>api.sendMail({ template, kind, purpose, to, key, culture, model })</c> enqueues into the mail outbox;
/// the default key is <c>rule:{name}:{template}:{entity}:{id}:v{version}</c>, so a retried async run sends once.</item>
/// </list>
/// A script error fails the write (validate/pre/post: the caller sees the error; async: retried, then parked)
/// unless the header says <c>// @onError skip</c>, in which case it is recorded and the write goes on.
/// </summary>
public sealed class EventRules : IDisposable
{
    private readonly JsRuleEngine _engine;
    private readonly RuleCatalog _catalog;
    private readonly IWriteHandlerRegistry _registry;
    private readonly IStoreProvider _stores;
    private readonly TimeProvider _time;
    private readonly ILogger? _logger;
    private readonly Func<IMailOutbox?> _mail;
    private readonly object _gate = new();
    private readonly Dictionary<string, (EventBinding Binding, IDisposable Token)> _registered = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Counters> _counters = new(StringComparer.Ordinal);
    private bool _started;

    public EventRules(JsRuleEngine engine, RuleCatalog catalog, IWriteHandlerRegistry registry, IStoreProvider stores,
        TimeProvider? timeProvider = null, ILogger<EventRules>? logger = null, Func<IMailOutbox?>? mailOutbox = null)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _stores = stores ?? throw new ArgumentNullException(nameof(stores));
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger;
        _mail = mailOutbox ?? (() => null);
    }

    private sealed class Counters
    {
        public long Runs;
        public long Failures;
        public RuleError? LastError;
        public DateTimeOffset? LastErrorAt;
    }

    /// <summary>Registers every loaded event rule and follows reloads.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_started)
            {
                return;
            }

            _started = true;
            _catalog.Changed += OnChanged;
            foreach (var rule in _catalog.Events)
            {
                Apply(rule.Name, rule);
            }
        }
    }

    public IReadOnlyList<EventRuleStatus> Status() => _catalog.Events.Select(r =>
    {
        var c = _counters.GetOrAdd(r.Name, _ => new Counters());
        return new EventRuleStatus(r.Name, r.Hash, r.Binding!, Interlocked.Read(ref c.Runs), Interlocked.Read(ref c.Failures), c.LastError?.ToString(), c.LastErrorAt);
    }).ToList();

    private void OnChanged(RuleKind kind, string name, LoadedRule? rule)
    {
        if (kind == RuleKind.Event)
        {
            lock (_gate)
            {
                Apply(name, rule);
            }
        }
    }

    private void Apply(string name, LoadedRule? rule)
    {
        if (_registered.TryGetValue(name, out var current))
        {
            if (rule is not null && current.Binding == rule.Binding)
            {
                return; // same place in the pipeline: the handler picks up the new version by itself
            }

            current.Token.Dispose();
            _registered.Remove(name);
        }

        if (rule?.Binding is not { } binding)
        {
            return;
        }

        var handlerName = "rules:" + name;
        HandlerRegistration registration = binding.Entity switch
        {
            EntityNames.Customer => HandlerRegistration.Create<Customer>("rules", binding.Entity, binding.Stage, binding.Order, handlerName, (e, ct) => HandleAsync(name, e, ct)),
            EntityNames.Order => HandlerRegistration.Create<Order>("rules", binding.Entity, binding.Stage, binding.Order, handlerName, (e, ct) => HandleAsync(name, e, ct)),
            EntityNames.Activity => HandlerRegistration.Create<Activity>("rules", binding.Entity, binding.Stage, binding.Order, handlerName, (e, ct) => HandleAsync(name, e, ct)),
            _ => throw new InvalidOperationException($"Unsupported entity '{binding.Entity}'."),
        };
        _registered[name] = (binding, _registry.Register(registration));
    }

    /// <summary>What a script asked the host to do; carried out after the script finished.</summary>
    private sealed class Intents
    {
        public List<(string Field, string Message)> Rejects { get; } = [];
        public List<string> AddTags { get; } = [];
        public List<string> RemoveTags { get; } = [];
        public List<IReadOnlyDictionary<string, object?>> Activities { get; } = [];
        public List<IReadOnlyDictionary<string, object?>> CustomerFields { get; } = [];
        public List<IReadOnlyDictionary<string, object?>> Mails { get; } = [];
    }

    /// <summary>The customer a record belongs to (the record itself for a customer).</summary>
    internal static string? CustomerIdOf(object? after, object? before) => (after ?? before) switch
    {
        Customer c => c.Id,
        Order o => o.CustomerId,
        Activity a => a.CustomerId,
        _ => null,
    };

    private async Task HandleAsync<T>(string name, WriteEvent<T> e, CancellationToken ct) where T : class, IEntity
    {
        var rule = _catalog.Find(RuleKind.Event, name);
        if (rule is null)
        {
            return;
        }

        var counters = _counters.GetOrAdd(name, _ => new Counters());
        Interlocked.Increment(ref counters.Runs);
        var intents = new Intents();
        var record = RecordMapping.ToPlain((object?)e.After ?? e.Before)!;
        var eventInfo = new Dictionary<string, object?>
        {
            ["entity"] = e.Entity,
            ["id"] = e.EntityId,
            ["operation"] = e.Operation.ToString().ToLowerInvariant(),
            ["stage"] = StageName(e.Stage),
            ["actor"] = e.Actor,
            ["depth"] = e.Chain.Count,
            ["before"] = RecordMapping.ToPlain(e.Before),
            ["customer"] = null,
        };
        if (rule.Script.Header.ContainsKey("facts") && CustomerIdOf(e.After, e.Before) is { Length: > 0 } customerId)
        {
            // The customer's derived figures, as a segment sees them (null while a customer is being created).
            eventInfo["customer"] = await Segments.CustomerFacts.LoadAsync(_stores.ForActor("rule:" + name), customerId, _time.GetUtcNow(), ct);
        }

        var result = await _engine.RunAsync(rule.Script, [record, eventInfo, null], new RuleRunOptions
        {
            Now = _time.GetUtcNow(),
            ReturnArguments = e.Stage == PipelineStage.PreOperation,
            Functions = Functions(e.Stage, intents),
        }, ct);

        var error = result.Error;
        if (error is null)
        {
            try
            {
                await ApplyAsync(rule, e, result, intents, ct);
                return;
            }
            catch (ArgumentException ex)
            {
                error = new RuleError(rule.Script.Path ?? name, 0, 0, RuleErrorKind.Result, RuleBudgetKind.None, ex.Message);
            }
        }

        Interlocked.Increment(ref counters.Failures);
        counters.LastError = error;
        counters.LastErrorAt = _time.GetUtcNow();
        _logger?.LogError("Event rule {Rule} failed on {Entity} {Id}: {Error}", name, e.Entity, e.EntityId, error.ToString());
        if (!(rule.Script.Header.TryGetValue("onerror", out var onError) && onError.Equals("skip", StringComparison.OrdinalIgnoreCase)))
        {
            throw new RuleFailedException(error);
        }
    }

    private static string StageName(PipelineStage stage) => stage switch
    {
        PipelineStage.Validate => "validate",
        PipelineStage.PreOperation => "pre",
        PipelineStage.PostOperation => "post",
        _ => "async",
    };

    private static Dictionary<string, RuleFunction> Functions(PipelineStage stage, Intents intents)
    {
        var functions = new Dictionary<string, RuleFunction>(StringComparer.Ordinal);
        if (stage == PipelineStage.Validate)
        {
            functions["reject"] = args =>
            {
                var (field, message) = args.Count >= 2 ? (args[0] as string ?? "", args[1] as string ?? "") : ("", args.Count > 0 ? args[0] as string ?? "" : "");
                intents.Rejects.Add((field, message.Length == 0 ? "rejected by a rule" : message));
                return null;
            };
        }

        if (stage is PipelineStage.PostOperation or PipelineStage.Async)
        {
            functions["addTag"] = args => { Cap(intents.AddTags.Count, "addTag"); intents.AddTags.Add(Tag(args)); return null; };
            functions["removeTag"] = args => { Cap(intents.RemoveTags.Count, "removeTag"); intents.RemoveTags.Add(Tag(args)); return null; };
            functions["setCustomerFields"] = args =>
            {
                if (args.Count == 0 || args[0] is not IReadOnlyDictionary<string, object?> fields)
                {
                    throw new ArgumentException("give an object such as { stage: 'LoyalCustomer' }");
                }

                Cap(intents.CustomerFields.Count, "setCustomerFields");
                intents.CustomerFields.Add(fields);
                return null;
            };
            functions["createActivity"] = args =>
            {
                if (args.Count == 0 || args[0] is not IReadOnlyDictionary<string, object?> spec)
                {
                    throw new ArgumentException("give an object such as { subject: 'Call back', type: 'Call', dueInDays: 2 }");
                }

                if (intents.Activities.Count >= 10)
                {
                    throw new InvalidOperationException("at most 10 activities per run");
                }

                intents.Activities.Add(spec);
                return null;
            };
        }

        if (stage == PipelineStage.Async)
        {
            // Async only: it runs after commit, once per delivery (retried with the same key), never in a rolled-back group.
            functions["sendMail"] = args =>
            {
                if (args.Count == 0 || args[0] is not IReadOnlyDictionary<string, object?> spec || spec.GetValueOrDefault("template") is not string { Length: > 0 })
                {
                    throw new ArgumentException("give an object such as { template: 'welcome' } or { template: 'campaign', kind: 'marketing', purpose: 'newsletter' }");
                }

                if (intents.Mails.Count >= 10)
                {
                    throw new InvalidOperationException("at most 10 sendMail calls per run");
                }

                intents.Mails.Add(spec);
                return null;
            };
        }

        return functions;
    }

    private static void Cap(int count, string name)
    {
        if (count >= 100)
        {
            throw new InvalidOperationException($"at most 100 {name} calls per run");
        }
    }

    private static string Tag(IReadOnlyList<object?> args) =>
        args.Count > 0 && args[0] is string { Length: > 0 and <= 100 } tag ? tag : throw new ArgumentException("give a tag as text of 1 to 100 characters");

    private async Task ApplyAsync<T>(LoadedRule rule, WriteEvent<T> e, RuleRunResult result, Intents intents, CancellationToken ct) where T : class, IEntity
    {
        var display = rule.Script.Path ?? rule.Name;
        switch (e.Stage)
        {
            case PipelineStage.Validate:
                foreach (var (field, message) in intents.Rejects.Concat(Rejections(result.Value)))
                {
                    e.Reject(field.Length == 0 ? "(record)" : field, $"{message} (rule {display})");
                }

                return;
            case PipelineStage.PreOperation:
                if (e.After is not null && result.Arguments.Count > 0 && result.Arguments[0] is IReadOnlyDictionary<string, object?> after)
                {
                    RecordMapping.CopyBack(e.After, RecordMapping.ToPlain(e.After)!, after);
                }

                return;
            default:
                await CarryOutAsync(rule, e, intents, ct);
                return;
        }
    }

    private static IEnumerable<(string Field, string Message)> Rejections(object? value) => value switch
    {
        null or true => [],
        false => [("", "rejected by a rule")],
        string s => [("", s)],
        IReadOnlyDictionary<string, object?> d => [(d.GetValueOrDefault("field") as string ?? "", d.GetValueOrDefault("message") as string ?? "rejected by a rule")],
        IEnumerable<object?> list => list.SelectMany(Rejections),
        _ => [],
    };

    private async Task CarryOutAsync<T>(LoadedRule rule, WriteEvent<T> e, Intents intents, CancellationToken ct) where T : class, IEntity
    {
        await SendMailsAsync(rule, e, intents, ct);
        if (intents.AddTags.Count == 0 && intents.RemoveTags.Count == 0 && intents.Activities.Count == 0 && intents.CustomerFields.Count == 0)
        {
            return;
        }

        var store = _stores.ForActor("rule:" + rule.Name);
        var customerId = CustomerIdOf(e.After, e.Before);
        if (string.IsNullOrEmpty(customerId))
        {
            throw new ArgumentException("this record has no customer to tag or to add an activity to");
        }

        if (intents.AddTags.Count > 0 || intents.RemoveTags.Count > 0 || intents.CustomerFields.Count > 0)
        {
            var customer = await store.Customers.GetAsync(customerId, ct) ?? throw new ArgumentException($"customer '{customerId}' does not exist");
            var changed = false;
            foreach (var fields in intents.CustomerFields)
            {
                var card = RecordMapping.ToPlain(customer)!;
                var wanted = new Dictionary<string, object?>(card, StringComparer.Ordinal);
                foreach (var (k, v) in fields)
                {
                    wanted[k] = v;
                }

                changed |= RecordMapping.CopyBack(customer, card, wanted).Count > 0;
            }

            var tags = customer.Tags.Concat(intents.AddTags).Except(intents.RemoveTags, StringComparer.Ordinal).Distinct(StringComparer.Ordinal).ToList();
            if (!tags.SequenceEqual(customer.Tags, StringComparer.Ordinal))
            {
                customer.Tags = tags;
                changed = true;
            }

            // Only a real change is written: an idempotent rule does not loop through the pipeline.
            if (changed)
            {
                await store.Customers.UpdateAsync(customer, ct);
            }
        }

        foreach (var spec in intents.Activities)
        {
            var activity = new Activity
            {
                CustomerId = customerId,
                Subject = spec.GetValueOrDefault("subject") as string ?? throw new ArgumentException("createActivity needs a subject"),
                Body = spec.GetValueOrDefault("body") as string,
                Owner = spec.GetValueOrDefault("owner") as string,
                Source = "rule:" + rule.Name,
            };
            if (spec.GetValueOrDefault("type") is string type)
            {
                activity.Type = Enum.TryParse<ActivityType>(type, true, out var t) && Enum.IsDefined(t)
                    ? t : throw new ArgumentException($"activity type must be one of {string.Join(", ", Enum.GetNames<ActivityType>())}, not \"{type}\"");
            }

            if (spec.GetValueOrDefault("dueInDays") is double days)
            {
                activity.DueAt = _time.GetUtcNow().AddDays(days);
            }

            await store.Activities.CreateAsync(activity, ct);
        }
    }

    /// <summary>Enqueues the rule's mails; the outbox refuses bad requests with an ArgumentException naming the field.</summary>
    private async Task SendMailsAsync<T>(LoadedRule rule, WriteEvent<T> e, Intents intents, CancellationToken ct) where T : class, IEntity
    {
        if (intents.Mails.Count == 0)
        {
            return;
        }

        var outbox = _mail() ?? throw new ArgumentException("sendMail: the mail outbox is not part of this engine");
        var version = ((IEntity?)e.After ?? e.Before)?.Version ?? 0;
        foreach (var spec in intents.Mails)
        {
            var template = (string)spec["template"]!;
            var kind = MailKind.Transactional;
            if (spec.GetValueOrDefault("kind") is string k && !Enum.TryParse(k, true, out kind))
            {
                throw new ArgumentException($"sendMail: kind must be 'transactional' or 'marketing', not \"{k}\"");
            }

            var model = spec.GetValueOrDefault("model") switch
            {
                null => new Dictionary<string, object?>(StringComparer.Ordinal),
                IReadOnlyDictionary<string, object?> m => m.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal),
                _ => throw new ArgumentException("sendMail: model must be an object, for example { campaign: { name: 'Spring' } }"),
            };
            var result = await outbox.EnqueueAsync(new MailRequest
            {
                Template = template,
                Kind = kind,
                Purpose = spec.GetValueOrDefault("purpose") as string,
                CustomerId = spec.GetValueOrDefault("customerId") as string ?? CustomerIdOf(e.After, e.Before),
                To = spec.GetValueOrDefault("to") as string,
                ToName = spec.GetValueOrDefault("toName") as string,
                Culture = spec.GetValueOrDefault("culture") as string,
                Model = model,
                IdempotencyKey = spec.GetValueOrDefault("key") as string is { Length: > 0 } key
                    ? key
                    : $"rule:{rule.Name}:{template}:{e.Entity}:{e.EntityId}:v{version}",
            }, ct);
            if (result.Reason is not null && !result.Duplicate)
            {
                _logger?.LogInformation("Event rule {Rule}: mail {Template} for {Entity} {Id} suppressed: {Reason}", rule.Name, template, e.Entity, e.EntityId, result.Reason);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _catalog.Changed -= OnChanged;
            foreach (var (_, (_, token)) in _registered)
            {
                token.Dispose();
            }

            _registered.Clear();
        }
    }
}
