namespace CrmEngine.Abstractions.Store;

/// <summary>Base type of errors the store reports to callers.</summary>
public class StoreException : Exception
{
    public StoreException(string message) : base(message) { }
    public StoreException(string message, Exception inner) : base(message, inner) { }
    public StoreException() { }
}

/// <summary>An update or delete carried a version that is no longer current; nothing was written.</summary>
public sealed class ConcurrencyException : StoreException
{
    public ConcurrencyException(string entity, string id, long expected, long actual)
        : base($"{entity} '{id}' was changed by someone else: you had version {expected}, the store has version {actual}. Reload it and apply your change again.")
    {
        Entity = entity;
        EntityId = id;
        ExpectedVersion = expected;
        ActualVersion = actual;
    }

    public ConcurrencyException() { Entity = EntityId = ""; }
    public ConcurrencyException(string message) : base(message) { Entity = EntityId = ""; }
    public ConcurrencyException(string message, Exception inner) : base(message, inner) { Entity = EntityId = ""; }

    public string Entity { get; }
    public string EntityId { get; }
    public long ExpectedVersion { get; }
    public long ActualVersion { get; }
}

public sealed class EntityNotFoundException : StoreException
{
    public EntityNotFoundException(string entity, string id) : base($"{entity} '{id}' does not exist.")
    {
        Entity = entity;
        EntityId = id;
    }

    public EntityNotFoundException() { Entity = EntityId = ""; }
    public EntityNotFoundException(string message) : base(message) { Entity = EntityId = ""; }
    public EntityNotFoundException(string message, Exception inner) : base(message, inner) { Entity = EntityId = ""; }

    public string Entity { get; }
    public string EntityId { get; }
}

/// <summary>One problem with one field of a write.</summary>
public sealed record ValidationError(string Field, string Message);

/// <summary>A write was rejected by validation (core checks, a rule or a plugin); nothing was written.</summary>
public sealed class ValidationException : StoreException
{
    public ValidationException(string entity, IReadOnlyList<ValidationError> errors)
        : base($"{entity} rejected: " + string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")))
    {
        Entity = entity;
        Errors = errors;
    }

    public ValidationException(string entity, string field, string message) : this(entity, [new ValidationError(field, message)]) { }

    public ValidationException() { Entity = ""; Errors = []; }
    public ValidationException(string message) : base(message) { Entity = ""; Errors = []; }
    public ValidationException(string message, Exception inner) : base(message, inner) { Entity = ""; Errors = []; }

    public string Entity { get; }
    public IReadOnlyList<ValidationError> Errors { get; }
}

/// <summary>Handlers triggered writes that triggered handlers too deeply: the chain is named.</summary>
public sealed class PipelineDepthException : StoreException
{
    public PipelineDepthException(int limit, IReadOnlyList<string> chain)
        : base($"Write chain exceeded the depth limit of {limit}: " + string.Join(" -> ", chain))
    {
        Limit = limit;
        Chain = chain;
    }

    public PipelineDepthException() { Chain = []; }
    public PipelineDepthException(string message) : base(message) { Chain = []; }
    public PipelineDepthException(string message, Exception inner) : base(message, inner) { Chain = []; }

    public int Limit { get; }
    public IReadOnlyList<string> Chain { get; }
}
