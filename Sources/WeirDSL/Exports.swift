@_exported import WeirModel
@_exported import WeirPolicy
